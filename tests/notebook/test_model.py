"""``Explorer`` on a real SQLite store: it shows what the workflow SDK returns, pages, filters,
reruns, and loads results — pickles only when confirmed."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from lifecycle import Runs, Workflow
from lifecycle._notebook import ConfirmationRequired, Explorer

from .flows import sales


def test_the_workflows_of_the_store(store: str) -> None:
    explorer = Explorer(store=store)
    assert explorer.workflows() == ["sales"]  # "nightly" is a run group, not a workflow
    assert explorer.workflow is None
    assert explorer.runs == []
    with pytest.raises(ValueError, match="no workflow named 'nightly'"):
        explorer.select_workflow("nightly")


def test_runs_are_the_sdks(store: str) -> None:
    explorer = Explorer("sales", store=store)
    sdk = Workflow("sales", store=store)
    assert explorer.runs == sdk.runs()
    assert [r["run_id"] for r in explorer.runs] == [2, 1]
    assert explorer.environment == "store"
    assert explorer.store == store


def test_a_time_range_filters_the_runs(store: str) -> None:
    explorer = Explorer("sales", store=store)
    first_end = explorer.runs[1]["end_time"]
    explorer.set_range(first_end, None)
    assert [r["run_id"] for r in explorer.runs] == [2]
    explorer.set_range(None, first_end)
    assert [r["run_id"] for r in explorer.runs] == [1]
    naive_local = (first_end + _dt.timedelta(days=1)).astimezone().replace(tzinfo=None)
    explorer.set_range(naive_local, None)
    assert explorer.runs == []
    explorer.set_range(None, None)
    assert len(explorer.runs) == 2
    with pytest.raises(ValueError, match="ends"):
        explorer.set_range(first_end, first_end - _dt.timedelta(seconds=1))


def test_pages(store: str) -> None:
    for _ in range(3):
        sales(local_run=True, store=store, progress=False)
    explorer = Explorer("sales", store=store, page_size=2)
    assert explorer.pages == 3
    assert [r["run_id"] for r in explorer.page_runs] == [6, 5]  # run 3 is "nightly"
    explorer.prev_page()
    assert explorer.page == 0
    explorer.next_page()
    explorer.next_page()
    explorer.next_page()  # stays on the last page
    assert explorer.page == 2
    assert [r["run_id"] for r in explorer.page_runs] == [1]
    explorer.set_range(None, None)  # a new filter starts on page one
    assert explorer.page == 0


def test_details_logs_and_graph_are_the_sdks(store: str) -> None:
    explorer = Explorer("sales", store=store)
    sdk = Workflow("sales", store=store)
    details = explorer.select_run(1)
    assert details == sdk.run_details(1)
    assert [t["name"] for t in details["tasks"]] == ["fetch_data", "calculate_total", "as_pair"]
    assert explorer.logs(1, "calculate_total") == sdk.logs(1, "calculate_total")
    assert explorer.logs(1, "calculate_total", stderr=True) == "a warning on stderr\n"
    task_id = details["tasks"][0]["id"]
    assert explorer.logs(1, task_id) == "fetching sales\n"
    svg = explorer.graph_svg()
    for name in ("fetch_data", "calculate_total", "as_pair"):
        assert f'data-task="{name}" data-state="Completed"' in svg
    with pytest.raises(ValueError, match="has no task 'nope'"):
        explorer.logs(1, "nope")


def test_load_result_binds_a_variable_and_offers_a_cell(store: str) -> None:
    namespace: dict[str, Any] = {}
    offered: list[str] = []
    explorer = Explorer("sales", store=store, namespace=namespace, set_next_input=offered.append)
    loaded = explorer.load_result(2, "fetch_data")
    assert loaded.value == {"sales": [100, 200, 150]}
    assert namespace == {"result_2_fetch_data": {"sales": [100, 200, 150]}}
    assert offered == [loaded.code]
    assert loaded.code.splitlines()[-1] == "result_2_fetch_data"
    assert explorer.load_result(2, "calculate_total", name="total").value == 450
    assert namespace["total"] == 450
    with pytest.raises(ValueError, match="not a Python variable name"):
        explorer.load_result(2, "calculate_total", name="not valid")


def test_a_pickled_result_is_loaded_only_when_confirmed(store: str) -> None:
    namespace: dict[str, Any] = {}
    explorer = Explorer("sales", store=store, namespace=namespace)
    with pytest.raises(ConfirmationRequired, match="pickle"):
        explorer.load_result(1, "as_pair")
    assert namespace == {}
    loaded = explorer.load_result(1, "as_pair", confirm=True)
    assert namespace == {"result_1_as_pair": (450, "a tuple is pickled")}
    assert loaded.value == (450, "a tuple is pickled")


def test_rerun_writes_a_new_run(store: str) -> None:
    explorer = Explorer("sales", store=store)
    entry = explorer.rerun(1, full=True)
    assert entry["original_run_id"] == 1
    assert entry["state"] == "Completed"
    stored = Workflow("sales", store=store).runs(refresh=True)
    assert [(r["run_id"], r["original_run_id"]) for r in stored] == [
        (entry["run_id"], 1),
        (2, None),
        (1, None),
    ]
    assert explorer.runs == stored  # refreshed
    assert explorer.rerun(2, version=1)["original_run_id"] == 2
    with pytest.raises(ValueError, match="version=7"):
        explorer.rerun(1, version=7)


def test_an_active_run_is_refreshed(store: str) -> None:
    with Runs(store) as runs:
        active = runs.create("datatailr", operation="workflow", name="sales", containers=["x"])
        explorer = Explorer("sales", store=store)
        seen = [explorer.active]
        assert explorer.runs[0]["run_id"] == active.id
        selected = explorer.select_run(active.id)
        runs.abort(active.id)
    seen.append(explorer.active)  # what it shows is what it last fetched
    explorer.refresh()
    seen.append(explorer.active)
    assert seen == [True, True, False]
    assert selected["state"] != "Stopped"
    assert explorer.selected is not None
    assert explorer.runs[0]["state"] == explorer.selected["state"] == "Stopped"


def test_environments_select_stores(store: str, tmp_path: Any) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    explorer = Explorer(
        "sales",
        environment="prod",
        environ={"LIFECYCLE_STORE": other, "LIFECYCLE_STORE_PROD": store},
    )
    assert list(explorer.environments) == ["default", "prod"]
    assert len(explorer.runs) == 2
    explorer.select_environment("default")  # has no "sales": nothing selected there
    assert (explorer.workflow, explorer.workflows(), explorer.runs) == (None, [], [])
    explorer.select_environment("PROD")
    assert explorer.workflow is None
    with pytest.raises(ValueError, match="LIFECYCLE_STORE_QA"):
        explorer.select_environment("qa")
