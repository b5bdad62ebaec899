"""Local runs end to end: the seed's examples, failures, results, parallelism, progress."""

from __future__ import annotations

import io
import threading

import anyio
import pytest

from lifecycle import MemoryStore
from lifecycle._workflow import Progress, Workflow, task, workflow

from .tasks import complex_pipeline, failing_pipeline, sales_pipeline, unserializable


def test_daily_sales_report(store: MemoryStore) -> None:
    view = sales_pipeline(local_run=True, store=store, progress=False)
    assert view.state == "Completed"
    assert view.operation == "workflow"
    assert view.name == "daily_sales_report"
    assert view.job_version == 1
    assert {n: c.state for n, c in view.containers.items()} == {
        "fetch_data": "Completed",
        "calculate_total": "Completed",
    }
    wf = Workflow(name="daily_sales_report", get_existing=True, store=store)
    assert wf.result(view.run_id, task_name="fetch_data") == {"sales": [100, 200, 150]}
    assert wf.result(view.run_id, task_name="calculate_total") == 450
    tasks = view.params["workflow"]["tasks"]
    assert [(t["name"], t["depends_on"]) for t in tasks] == [
        ("fetch_data", []),
        ("calculate_total", ["fetch_data"]),
    ]
    assert tasks[0]["function"] == "tests.workflow.tasks.fetch_data"
    assert view.params["workflow"]["schedule"] is None


def test_complex_pipeline(store: MemoryStore) -> None:
    view = complex_pipeline(local_run=True, store=store, progress=False)
    assert view.state == "Completed"
    assert len(view.containers) == 11
    wf = Workflow(name="Complex Pipeline", store=store)
    assert wf.result(view.run_id, task_name="first_addition") == 55
    assert wf.result(view.run_id, task_name="reduce_list") == 210
    assert [wf.result(view.run_id, task_name=f"add_{n}") for n in ("one", "two", "three")] == [
        211,
        212,
        213,
    ]


def test_independent_tasks_run_in_parallel(store: MemoryStore) -> None:
    barrier = threading.Barrier(4, timeout=10)  # breaks unless four tasks are in it at once

    @task()
    def meet() -> int:
        return barrier.wait()

    @task()
    def collect(*seats: int) -> list[int]:
        return sorted(seats)

    @workflow(name="parallel")
    def parallel() -> None:
        collect(*[meet().alias(f"meet_{i}") for i in range(4)])

    view = parallel(local_run=True, store=store, progress=False, max_parallel=4)
    assert view.state == "Completed", view.reason
    assert Workflow("parallel", store=store).result(view.run_id, "collect") == [0, 1, 2, 3]


def test_a_failing_task_fails_the_run_and_stops_downstream(store: MemoryStore) -> None:
    view = failing_pipeline(local_run=True, store=store, progress=False)
    assert view.state == "Failed"
    states = {n: (c.state, c.reason) for n, c in view.containers.items()}
    assert states["explode"][0] == "Failed"
    assert "ZeroDivisionError" in (states["explode"][1] or "")
    assert states["report"] == ("Stopped", "upstream_failed")
    assert states["side"][0] == "Completed"  # independent of the failure
    wf = Workflow("failing_pipeline", store=store)
    assert wf.result(view.run_id, task_name="explode") is None
    assert wf.result(view.run_id, task_name="report") is None
    stderr = wf.logs(view.run_id, task_name="explode", stderr=True)
    assert "Traceback (most recent call last)" in stderr
    assert "ZeroDivisionError" in stderr
    assert "total // 0" in stderr


def test_an_unserializable_result_fails_the_task(store: MemoryStore) -> None:
    view = unserializable(local_run=True, store=store, progress=False)
    assert view.state == "Failed"
    lock = view.containers["make_lock"]
    assert lock.state == "Failed"
    # the engine's words: "the result could not be stored: a lock result can be encoded neither
    # by msgspec nor by pickle: cannot pickle '_thread.lock' object"
    assert "could not be stored" in (lock.reason or "")
    assert "pickle" in (lock.reason or "")
    assert view.containers["report"].reason == "upstream_failed"


@pytest.mark.anyio
async def test_two_runs_of_one_workflow_at_once() -> None:
    store = MemoryStore()
    views = []

    async def one() -> None:
        views.append(await complex_pipeline.run_async(store))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert sorted(v.run_id for v in views) == [1, 2]
    assert [v.state for v in views] == ["Completed", "Completed"]


def test_progress_lines(store: MemoryStore) -> None:
    out = io.StringIO()
    view = failing_pipeline(local_run=True, store=store, progress=Progress(out, live=False))
    text = out.getvalue()
    rid = view.run_id
    assert f"[run {rid}] fetch_data: Running\n" in text
    assert f"[run {rid}] fetch_data: Completed\n" in text
    assert (
        f"[run {rid}] explode: Failed (ZeroDivisionError: integer division or modulo by zero)\n"
        in text
    )
    assert f"[run {rid}] report: Stopped (upstream_failed)\n" in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith(f"[run {rid}] failing_pipeline: Failed (container 'explode' failed")


def test_progress_table(store: MemoryStore) -> None:
    out = io.StringIO()
    sales_pipeline(local_run=True, store=store, progress=Progress(out, live=True))
    text = out.getvalue()
    assert "\x1b[2K" in text  # lines are redrawn in place
    last = text.rsplit("daily_sales_report", 1)[1]
    assert "Completed" in last
    assert "2/2 tasks done" in last


def test_progress_strips_control_characters() -> None:
    from lifecycle._workflow._progress import clean

    assert clean("evil\x1b[2Jname\nnext") == "evil [2Jname next"


def test_sqlite_store(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    view = complex_pipeline(local_run=True, store=url, progress=False)
    assert view.state == "Completed"
    wf = Workflow(name="Complex Pipeline", get_existing=True, store=url)
    assert [r["run_id"] for r in wf.runs()] == [view.run_id]
    assert wf.result(view.run_id, task_name="add_three") == 213
