"""Reruns: failed ∪ interrupted ∪ never-started ∪ downstream by default, from_task, full."""

from __future__ import annotations

import pytest

from lifecycle import MemoryStore
from lifecycle._workflow import Workflow, WorkflowError, task, workflow

from . import tasks
from .tasks import flaky_pipeline, get_number


def states(wf: Workflow, run_id: int) -> dict[str, tuple[str, int | None]]:
    return {t["name"]: (t["state"], t["cached_from"]) for t in wf.run_details(run_id)["tasks"]}


def test_default_rerun_reexecutes_failed_and_downstream(store: MemoryStore) -> None:
    first = flaky_pipeline(local_run=True, store=store, progress=False)
    assert first.state == "Failed"
    wf = Workflow(name="flaky_pipeline", get_existing=True, store=store)
    tasks.FLAKY["fail"] = False  # "fix the bug"
    again = wf.rerun(first.run_id, progress=False)
    assert again["state"] == "Completed"
    assert again["original_run_id"] == first.run_id
    rid = again["run_id"]
    assert states(wf, rid) == {
        "fetch_data": ("Completed", first.run_id),  # reused from the cache
        "calculate_total": ("Completed", first.run_id),
        "flaky": ("Completed", None),  # failed before: executed
        "report": ("Completed", None),  # stopped (upstream_failed) before: executed
        "side": ("Completed", first.run_id),
    }
    assert wf.result(rid, task_name="report") == "value 900"
    assert wf.result(rid, task_name="fetch_data") == {"sales": [100, 200, 150]}
    view_original = wf.runs(refresh=True)[-1]
    assert view_original["run_id"] == first.run_id  # the original is never reopened
    assert view_original["state"] == "Failed"
    # a rerun of a rerun keeps pointing at the run that computed the result
    third = wf.rerun(rid, from_task="report", progress=False)
    assert states(wf, third["run_id"])["fetch_data"] == ("Completed", first.run_id)
    assert states(wf, third["run_id"])["flaky"] == ("Completed", rid)
    assert states(wf, third["run_id"])["report"] == ("Completed", None)


def test_runs_after_rerun_is_not_stale(store: MemoryStore) -> None:
    """``runs()`` caches the history on the instance; a rerun (a write of this workflow's runs)
    used to leave that cache as it was, so the new run was missing."""
    first = flaky_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="flaky_pipeline", get_existing=True, store=store)
    assert [r["run_id"] for r in wf.runs()] == [first.run_id]
    tasks.FLAKY["fail"] = False
    again = wf.rerun(first.run_id, progress=False)
    listed = wf.runs()
    assert [r["run_id"] for r in listed] == [again["run_id"], first.run_id]
    assert listed[0]["state"] == "Completed" and listed[0]["original_run_id"] == first.run_id
    assert wf.runs() == listed  # and cached again until the next write


def test_rerun_from_task_and_full(store: MemoryStore) -> None:
    tasks.FLAKY["fail"] = False
    first = flaky_pipeline(local_run=True, store=store, progress=False)
    assert first.state == "Completed"
    wf = Workflow(name="flaky_pipeline", store=store)
    from_task = wf.rerun(first.run_id, from_task="calculate_total", progress=False)
    assert states(wf, from_task["run_id"]) == {
        "fetch_data": ("Completed", first.run_id),
        "calculate_total": ("Completed", None),
        "flaky": ("Completed", None),
        "report": ("Completed", None),
        "side": ("Completed", first.run_id),
    }
    full = wf.rerun(first.run_id, full=True, progress=False)
    assert all(cached is None for _, cached in states(wf, full["run_id"]).values())
    assert full["original_run_id"] == first.run_id
    with pytest.raises(ValueError, match="from_task='nope' is not a task"):
        wf.rerun(first.run_id, from_task="nope", progress=False)


def test_rerun_version(store: MemoryStore) -> None:
    tasks.FLAKY["fail"] = False
    first = flaky_pipeline(local_run=True, store=store, progress=False)
    wf = Workflow(name="flaky_pipeline", store=store)
    assert wf.rerun(first.run_id, version=1, progress=False)["job_version"] == 1
    with pytest.raises(WorkflowError, match="version=2 is not the code loaded"):
        wf.rerun(first.run_id, version=2, progress=False)


@task()
def base() -> int:
    return 1


@task()
def changed_base() -> int:
    return 2


@task()
def plus_one(x: int) -> int:
    return x + 1


def test_rerun_reexecutes_tasks_whose_definition_changed(store: MemoryStore) -> None:
    @workflow(name="changing")
    def v1() -> None:
        plus_one(base().alias("start"))
        get_number()

    first = v1(local_run=True, store=store, progress=False)

    @workflow(name="changing")
    def v2() -> None:
        plus_one(changed_base().alias("start"))  # same name, new code
        get_number()

    wf = Workflow(name="changing", store=store)
    again = wf.rerun(first.run_id, progress=False)  # v2 is the code loaded now
    assert again["job_version"] == 2
    assert states(wf, again["run_id"]) == {
        "start": ("Completed", None),
        "plus_one": ("Completed", None),
        "get_number": ("Completed", first.run_id),
    }
    assert wf.result(again["run_id"], task_name="plus_one") == 3
    del v2


def test_results_are_reusable_by_other_workflows(store: MemoryStore) -> None:
    tasks.FLAKY["fail"] = False
    first = flaky_pipeline(local_run=True, store=store, progress=False)

    @task()
    def read_total() -> int:  # a task of one workflow reads a cached result of another
        other = Workflow(name="flaky_pipeline", store=store)
        value: int = other.result(first.run_id, task_name="calculate_total")
        return value

    @workflow(name="consumer")
    def consumer() -> None:
        plus_one(read_total())

    view = consumer(local_run=True, store=store, progress=False)
    assert view.state == "Completed", view.reason
    assert Workflow("consumer", store=store).result(view.run_id, "plus_one") == 451
