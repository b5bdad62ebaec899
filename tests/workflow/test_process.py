"""Tasks in OS processes (``adapter="subprocess"``), and runs on trio."""

from __future__ import annotations

import pytest

from lifecycle import MemoryStore
from lifecycle._workflow import Workflow

from .tasks import complex_pipeline, failing_pipeline, hungry, sales_pipeline

pytestmark = pytest.mark.slow


def test_subprocess_adapter_runs_the_seed_example(store: MemoryStore) -> None:
    view = sales_pipeline(local_run=True, store=store, adapter="subprocess", progress=False)
    assert view.state == "Completed", view.reason
    wf = Workflow(name="daily_sales_report", store=store)
    assert wf.result(view.run_id, task_name="calculate_total") == 450
    assert wf.logs(view.run_id, task_name="fetch_data") == "fetching sales\n"
    assert view.containers["fetch_data"].state == "Completed"


def test_subprocess_failure_and_logs(store: MemoryStore) -> None:
    view = failing_pipeline(local_run=True, store=store, adapter="subprocess", progress=False)
    assert view.state == "Failed"
    explode = view.containers["explode"]
    assert explode.state == "Failed"
    assert explode.reason == "ZeroDivisionError: integer division or modulo by zero"
    assert view.containers["report"].reason == "upstream_failed"
    wf = Workflow(name="failing_pipeline", store=store)
    stderr = wf.logs(view.run_id, task_name="explode", stderr=True)
    assert "dividing by zero" in stderr
    assert "Traceback (most recent call last)" in stderr
    assert wf.result(view.run_id, task_name="explode") is None


def test_subprocess_memory_limit(store: MemoryStore) -> None:
    view = hungry(local_run=True, store=store, adapter="subprocess", progress=False)
    assert view.containers["hog"].state == "Out of Memory"
    assert view.state == "Out of Memory"


@pytest.mark.anyio
async def test_runs_on_either_event_loop() -> None:
    view = await complex_pipeline.run_async(MemoryStore())
    assert view.state == "Completed"
