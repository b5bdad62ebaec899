"""``lifecycle_adapters.prefect.LifecycleHooks`` with real Prefect 3 (issue 13).

Prefect's local test harness (a temporary SQLite-backed API in this process; no server, no
network). A flow with dynamic task submission, a retried task, a failing task and a dependent
that never starts (``NotReady``) is recorded under each built-in dialect; every container's
outcome and the run's must equal what Prefect reports (read back from Prefect's API), mapped by
this test's own table. The hooks are synchronous (Prefect calls them), so these tests need no
event loop of their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

prefect = pytest.importorskip("prefect")

from lifecycle_adapters.prefect import LifecycleHooks  # noqa: E402
from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

import lifecycle  # noqa: E402

from ._examples import run_example  # noqa: E402

pytestmark = pytest.mark.slow

DIALECTS = ["datatailr", "domino", "qualytics"]

# Prefect's report, in lifecycle's words: a task that never ran (NotReady) was stopped.
TASK_OUTCOME = {"Completed": "succeeded", "Failed": "failed", "NotReady": "cancelled"}
FLOW_OUTCOME = {"Completed": "succeeded", "Failed": "failed"}


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=60):
        yield


def _make_flow(hooks: LifecycleHooks, parts: int, attempts: Iterator[int]) -> Any:
    task, flow = prefect.task, prefect.flow

    @task(**hooks.task)
    def inc(x: int) -> int:
        return x + 1

    @task(retries=1, **hooks.task)
    def flaky(x: int) -> int:
        if next(attempts) == 0:
            raise RuntimeError("first try fails")
        return x

    @task(**hooks.task)
    def boom(x: int) -> int:
        raise ValueError(f"cannot load {x}")

    @flow(**hooks.flow)
    def nightly(n: int) -> list[Any]:
        futures = [inc.submit(i) for i in range(n)]  # decided at run time
        retried = flaky.submit(7)
        failed = boom.submit(3)
        never = inc.submit(failed)  # NotReady: its upstream failed
        return [*futures, retried, failed, never]

    return nightly


def _prefect_says(flow_run_id: Any) -> tuple[str, dict[str, str], dict[str, int]]:
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        found = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    tasks = {str(t.name): str(t.state.name if t.state else None) for t in found}
    runs = {str(t.name): t.run_count for t in found}
    return str(flow_run.state.name if flow_run.state else None), tasks, runs


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_dynamic_flow_with_a_retry_and_a_never_started_dependent(
    harness: None, dialect: str, tmp_path: Path
) -> None:
    hooks = LifecycleHooks(f"sqlite:///{tmp_path / 'runs.db'}", dialect=dialect)
    nightly = _make_flow(hooks, 5, itertools.count())
    state = nightly(5, return_state=True)
    assert state.name == "Failed"
    try:
        hooks.raise_errors()
        with lifecycle.Runs(hooks.store) as runs:
            (run_id,) = hooks.run_ids
            view = runs.get(run_id)
            flow_run_id = view.params["prefect_flow_run"]
            flow_state, tasks, run_counts = _prefect_says(flow_run_id)
            assert len(tasks) == 8 and "NotReady" in tasks.values()
            assert {n: c.outcome for n, c in view.containers.items()} == {
                n: TASK_OUTCOME[s] for n, s in tasks.items()
            }
            assert view.outcome == FLOW_OUTCOME[flow_state]
            assert not view.warning
            for name, count in run_counts.items():
                assert view.containers[name].attempt == max(count, 1), name
            never = next(n for n, s in tasks.items() if s == "NotReady")
            assert view.containers[never].reason == "not_ready"
    finally:
        hooks.close()


def test_a_completed_flow_that_swallowed_a_failure_ends_by_the_policy(
    harness: None, tmp_path: Path
) -> None:
    """Prefect calls the flow Completed (it caught the failure); Datatailr's ``fail`` policy
    cannot: the run ends Failed and the disagreement is kept in ``errors``."""
    hooks = LifecycleHooks(f"sqlite:///{tmp_path / 'runs.db'}", dialect="datatailr")

    @prefect.task(**hooks.task)
    def boom() -> None:
        raise ValueError("boom")

    @prefect.flow(**hooks.flow)
    def forgiving() -> str:
        boom.submit().wait()
        return "fine"

    assert forgiving() == "fine"
    try:
        with pytest.raises(ExceptionGroup) as caught:
            hooks.raise_errors()
        assert isinstance(caught.value.exceptions[0], lifecycle.PolicyViolation)
        with lifecycle.Runs(hooks.store) as runs:
            assert runs.get(hooks.run_ids[0]).state == "Failed"
    finally:
        hooks.close()


def test_errors_never_reach_prefect(harness: None) -> None:
    """A store that cannot be opened: the flow still runs; the error is kept and raised by
    ``raise_errors()``."""
    hooks = LifecycleHooks("sqlite:///no-such-dir/runs.db")

    @prefect.flow(**hooks.flow)
    def simple() -> int:
        return 1

    assert simple() == 1
    with pytest.raises(ExceptionGroup, match="errors"):
        hooks.raise_errors()
    assert isinstance(hooks.errors[0], lifecycle.StoreError)


def test_the_example_runs(tmp_path: Path) -> None:
    """examples/prefect_hooks.py, as the README tells a user to run it (Prefect's own ephemeral
    API, in a fresh process)."""
    out = run_example("prefect_hooks.py", f"sqlite:///{tmp_path / 'runs.db'}", timeout=180)
    assert "nightly: Failed" in out
    assert "Stopped    attempt 1  not_ready" in out
    assert "Completed  attempt 2" in out  # the retried task
