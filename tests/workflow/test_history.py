"""The Workflow history API: runs, run_details, logs, result — the seed's semantics."""

from __future__ import annotations

import datetime as _dt

import pytest

from lifecycle import MemoryStore, UnknownRun
from lifecycle._workflow import Environment, Workflow, WorkflowError, task, workflow

from .tasks import chatty_pipeline, failing_pipeline, get_number, sales_pipeline


def test_get_existing_needs_a_known_workflow(store: MemoryStore) -> None:
    with pytest.raises(ValueError, match="no workflow named 'nope'"):
        Workflow(name="nope", get_existing=True, store=store)
    Workflow(name="nope", store=store)  # a handle without the check
    sales_pipeline.deploy(store=store)  # registering is enough to exist
    wf = Workflow(
        name="daily_sales_report", environment=Environment.DEV, get_existing=True, store=store
    )
    assert wf.runs() == []


def test_runs_are_fetched_again_after_a_run(store: MemoryStore) -> None:
    first = sales_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="daily_sales_report", get_existing=True, store=store)
    runs = wf.runs()
    assert [r["run_id"] for r in runs] == [first.run_id]
    entry = runs[0]
    assert set(entry) >= {
        "run_id",
        "state",
        "start_time",
        "end_time",
        "job_version",
        "original_run_id",
    }
    assert entry["state"] == "Completed"
    assert entry["job_version"] == 1
    assert entry["original_run_id"] is None
    assert isinstance(entry["start_time"], _dt.datetime)
    assert entry["start_time"] <= entry["end_time"]

    second = sales_pipeline(local_run=True, store=store, progress=False)
    # a run written by this process makes the cached history stale: it is fetched again
    assert [r["run_id"] for r in wf.runs()] == [second.run_id, first.run_id]
    assert [r["run_id"] for r in wf.runs(refresh=True)] == [second.run_id, first.run_id]

    after_first = entry["end_time"]
    assert [r["run_id"] for r in wf.runs(start_time=after_first)] == [second.run_id]
    assert [r["run_id"] for r in wf.runs(end_time=after_first)] == [first.run_id]
    future = _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)
    assert wf.runs(start_time=future) == []
    naive_past = _dt.datetime.now() - _dt.timedelta(days=1)  # naive: local time
    assert len(wf.runs(start_time=naive_past)) == 2


def test_run_details(store: MemoryStore) -> None:
    view = failing_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="failing_pipeline", store=store)
    details = wf.run_details(view.run_id)
    assert details["run_id"] == view.run_id
    assert details["state"] == "Failed"
    by_name = {t["name"]: t for t in details["tasks"]}
    assert [t["name"] for t in details["tasks"]] == [
        "fetch_data",
        "calculate_total",
        "explode",
        "report",
        "side",
    ]
    assert by_name["explode"]["state"] == "Failed"
    assert by_name["report"]["state"] == "Stopped"
    assert by_name["report"]["reason"] == "upstream_failed"
    assert by_name["calculate_total"]["depends_on"] == ["fetch_data"]
    assert by_name["fetch_data"]["start_time"] <= by_name["fetch_data"]["end_time"]
    assert all(t["id"].startswith(t["name"] + "@") for t in details["tasks"])
    # fetch_data returned a dict (msgpack), explode raised (nothing stored)
    assert (by_name["fetch_data"]["has_result"], by_name["fetch_data"]["result_codec"]) == (
        True,
        "msgpack",
    )
    assert (by_name["explode"]["has_result"], by_name["explode"]["result_codec"]) == (False, None)
    with pytest.raises(UnknownRun):
        Workflow(name="daily_sales_report", store=store).run_details(view.run_id)


def test_logs(store: MemoryStore) -> None:
    view = chatty_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="chatty", store=store)
    out = wf.logs(view.run_id, task_name="chatty")
    assert out.splitlines() == [f"line {i}" for i in range(10)]
    assert wf.logs(view.run_id, task_name="chatty", lines=3).splitlines() == [
        "line 7",
        "line 8",
        "line 9",
    ]
    assert wf.logs(view.run_id, task_name="chatty", lines=0) == ""
    assert wf.logs(view.run_id, task_name="chatty", stderr=True) == ""
    task_id = wf.run_details(view.run_id)["tasks"][0]["id"]
    assert wf.logs(view.run_id, task_id=task_id) == out
    failed = failing_pipeline(local_run=True, store=store, progress=False)
    wf2 = Workflow(name="failing_pipeline", store=store)
    assert "about to divide" in wf2.logs(failed.run_id, task_name="explode")
    stderr = wf2.logs(failed.run_id, task_name="explode", stderr=True)
    assert "dividing by zero" in stderr
    assert "ZeroDivisionError" in stderr
    with pytest.raises(ValueError, match="exactly one of"):
        wf.logs(view.run_id)


def test_unknown_task_name_is_a_value_error(store: MemoryStore) -> None:
    view = sales_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="daily_sales_report", store=store)
    with pytest.raises(ValueError, match="no task named 'fetch'"):
        wf.result(view.run_id, task_name="fetch")
    with pytest.raises(ValueError, match="no task named 'fetch'"):
        wf.logs(view.run_id, task_name="fetch")
    with pytest.raises(ValueError, match="no task with id"):
        wf.result(view.run_id, task_id="fetch@000")


@task()
def old_step() -> str:
    return "old"


@task()
def new_step() -> str:
    return "new"


def test_task_id_addresses_tasks_the_current_definition_lost(store: MemoryStore) -> None:
    @workflow(name="evolving")
    def v1() -> None:
        get_number()
        old_step()

    first = v1(local_run=True, store=store, progress=False)

    @workflow(name="evolving")
    def v2() -> None:
        get_number()
        new_step()

    second = v2(local_run=True, store=store, progress=False)
    assert (first.job_version, second.job_version) == (1, 2)
    wf = Workflow(name="evolving", get_existing=True, store=store)
    assert wf.result(first.run_id, task_name="get_number") == 42
    with pytest.raises(ValueError, match="old_step"):
        wf.result(first.run_id, task_name="old_step")
    old_id = next(t["id"] for t in wf.run_details(first.run_id)["tasks"] if t["name"] == "old_step")
    assert wf.result(first.run_id, task_id=old_id) == "old"
    assert wf.logs(first.run_id, task_id=old_id) == ""
    # a task of the current definition that an older run does not have: nothing stored
    assert wf.result(first.run_id, task_name="new_step") is None
    assert wf.result(second.run_id, task_name="new_step") == "new"
    assert [r["job_version"] for r in wf.runs()] == [2, 1]


def test_result_is_none_when_the_blob_is_gone(store: MemoryStore) -> None:
    view = sales_pipeline(local_run=True, store=store, progress=False)
    key = view.containers["calculate_total"].result.key  # type: ignore[union-attr]
    store._blobs.pop(key)
    assert (
        Workflow("daily_sales_report", store=store).result(view.run_id, "calculate_total") is None
    )


def test_workflow_api_errors_are_workflow_errors() -> None:
    assert issubclass(WorkflowError, ValueError)
