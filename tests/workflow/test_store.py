"""The default store, and the forms a ``store=`` argument takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import AsyncRuns, MemoryStore, Runs
from lifecycle._workflow import Workflow, default_store_url
from lifecycle._workflow._store import store_url

from .tasks import sales_pipeline


def test_default_store_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LIFECYCLE_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    url = default_store_url()
    expected = tmp_path / ".local" / "share" / "lifecycle" / "runs.db"
    assert url == f"sqlite:///{expected}"  # sqlite:////abs/path: four slashes, absolute
    assert expected.parent.is_dir()
    monkeypatch.setenv("LIFECYCLE_STORE", "memory://")
    assert default_store_url() == "memory://"
    monkeypatch.setenv("LIFECYCLE_STORE", str(tmp_path / "sub" / "x.db"))
    assert default_store_url() == f"sqlite:///{tmp_path}/sub/x.db"
    assert (tmp_path / "sub").is_dir()
    assert store_url("sqlite:///relative.db") == "sqlite:///relative.db"


def test_store_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIFECYCLE_STORE", str(tmp_path / "env.db"))
    view = sales_pipeline(local_run=True, progress=False)
    wf = Workflow(name="daily_sales_report", get_existing=True)
    assert [r["run_id"] for r in wf.runs()] == [view.run_id]
    assert (tmp_path / "env.db").exists()


def test_store_objects_are_shared() -> None:
    store = MemoryStore()
    first = sales_pipeline(local_run=True, store=store, progress=False)
    assert Workflow("daily_sales_report", store=AsyncRuns(store)).runs()[0]["run_id"] == 1
    with Runs(store) as runs:
        second = sales_pipeline(local_run=True, store=runs, progress=False)
        wf = Workflow("daily_sales_report", store=runs)
        assert [r["run_id"] for r in wf.runs()] == [second.run_id, first.run_id]
