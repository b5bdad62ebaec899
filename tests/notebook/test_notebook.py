"""``examples/explorer.ipynb``, executed by ``nbclient`` on a real kernel (the venv's
``python3`` kernelspec, which runs this interpreter), with the widget state saved: the magic's
cell shows the widget, and the saved state holds what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lifecycle import Workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "explorer.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

pytestmark = [pytest.mark.slow]


def test_the_example_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "runs.db"
    monkeypatch.setenv("LIFECYCLE_STORE", str(store))  # the kernel inherits it
    nb = nbformat.read(EXAMPLE, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "clear outputs"
    client = NotebookClient(
        nb, kernel_name="python3", timeout=60, store_widget_state=True, resources={}
    )
    client.execute(cwd=str(tmp_path))

    code = [c for c in nb.cells if c.cell_type == "code"]
    magic = next(c for c in code if "%lifecycle_runs" in c.source)
    views = [o for o in magic.outputs if WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 1
    model_id = views[0]["data"][WIDGET_VIEW]["model_id"]

    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert model_id in state
    assert state[model_id]["model_name"] == "VBoxModel"
    saved = json.dumps(state)
    runs = Workflow("daily_sales_report", store=str(store)).runs(refresh=True)
    assert [r["state"] for r in runs] == ["Completed", "Completed"]
    for run in runs:  # each run is a row of the saved table
        assert f'"value": "{run["run_id"]}"' in saved
    assert '"daily_sales_report"' in saved  # the workflow dropdown

    sdk = next(c for c in code if "wf.runs()" in c.source)
    assert sdk.outputs[0]["text"] == (
        f"{runs[0]['run_id']} Completed ['Completed', 'Completed']\nfetching sales\n"
    )
    assert sdk.outputs[-1]["data"]["text/plain"] == "450"
    loaded = next(c for c in code if "load_result" in c.source)
    assert (
        loaded.outputs[-1]["data"]["text/plain"]
        == f"('result_{runs[0]['run_id']}_calculate_total', 450)"
    )
