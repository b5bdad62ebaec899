"""Record Prefect 3 flows as lifecycle runs, with Prefect's own state hooks (issue 13).

::

    from prefect import flow, task
    from lifecycle_adapters.prefect import LifecycleHooks

    hooks = LifecycleHooks("sqlite:///runs.db", dialect="datatailr")

    @task(**hooks.task)
    def load(part: int) -> int: ...

    @flow(**hooks.flow)
    def nightly() -> None: ...

    nightly()
    hooks.raise_errors()  # what lifecycle refused, if anything

A flow run becomes a run named after the flow; each task run becomes a container named after the
task run (``load-3fa``), added when it first runs (Prefect submits tasks at run time, so nothing
is declared up front). The hooks are the ones a Prefect user already writes — ``on_running``,
``on_completion``, ``on_failure`` (and ``on_crashed`` / ``on_cancellation`` for flows) — and
each maps to a phase (``Runs.advance``), so every dialect gets the facts it needs:

=====================================  =========================================================
Prefect                                lifecycle
=====================================  =========================================================
flow Running                           a new run, started
task Running                           the container joins the run (``ContainerAdded``), started
task Retrying (``retries=``)           a retry: ``Requeued("retry")``, then started again
task Completed / Failed                succeeded / failed (the state's message)
flow Completed / Failed / Cancelled    ``finish(run_id, outcome)``: tasks that never ran
/ Crashed                              (``NotReady`` dependents of a failed task: Prefect fires
                                       no hook for them) are read from Prefect's API, added and
                                       stopped with reason ``not_ready``
=====================================  =========================================================

The flow's outcome is recorded as Prefect reports it where the dialect's aggregation policy
allows it (a Failed flow fails a Qualytics run too). A flow Prefect calls Completed although a
task failed (the flow caught the failure) ends by the policy instead — Failed under Datatailr's
``fail`` — and that disagreement is kept in ``errors``.

Prefect runs hooks in its own threads and logs and swallows what they raise, so the hooks never
raise: every lifecycle error is kept in ``errors`` (and logged), and ``raise_errors()`` raises
them as an ``ExceptionGroup``. The hooks write through a blocking ``lifecycle.Runs``: a task's
facts are stored before its hook returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Literal, TypedDict

from lifecycle import PolicyViolation, Runs
from lifecycle import events as ev

__all__ = ["LifecycleHooks"]

_log = logging.getLogger("lifecycle.prefect")

_OPERATION: Final = {"qualytics": "scan"}
"""The operation of a run for dialects where only some operations have containers."""

_FLOW_OUTCOME: Final[dict[str, Literal["succeeded", "failed", "cancelled"]]] = {
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CRASHED": "failed",
    "CANCELLED": "cancelled",
}
"""A finished flow run's state type → the run's outcome."""

Hook = Callable[[Any, Any, Any], None]


class TaskHooks(TypedDict):
    """Keyword arguments for ``@task(**hooks.task)``. Each a ``list[Any]``: Prefect's own hook
    types name its classes, and a list's item type must match exactly."""

    on_running: list[Any]
    on_completion: list[Any]
    on_failure: list[Any]


class FlowHooks(TaskHooks):
    """Keyword arguments for ``@flow(**hooks.flow)``."""

    on_crashed: list[Any]
    on_cancellation: list[Any]


class LifecycleHooks:
    """Prefect state hooks that record flows and tasks into a lifecycle store (see the module
    docstring). ``hooks.task`` and ``hooks.flow`` are keyword arguments for ``@task`` /
    ``@flow``; ``store`` is a store URL; runs are named after the flow unless ``name`` is
    given."""

    def __init__(
        self, store: str = "memory://", *, dialect: str = "datatailr", name: str | None = None
    ) -> None:
        self.store, self.dialect, self.run_name = store, dialect, name
        self.errors: list[Exception] = []
        self._unraised: list[Exception] = []
        self._lock = threading.Lock()
        self._runs: Runs | None = None
        self._run_of: dict[str, int] = {}  # Prefect flow run id → lifecycle run id
        self._known: dict[int, set[str]] = {}  # run → its containers (no view per task start)
        self.run_ids: list[int] = []
        self.task: TaskHooks = {
            "on_running": [self._task_running],
            "on_completion": [self._task_completed],
            "on_failure": [self._task_failed],
        }
        self.flow: FlowHooks = {
            "on_running": [self._flow_running],
            "on_completion": [self._flow_ended],
            "on_failure": [self._flow_ended],
            "on_crashed": [self._flow_ended],
            "on_cancellation": [self._flow_ended],
        }

    # -- the user's side ----------------------------------------------------------------------

    def raise_errors(self) -> None:
        """Raise the lifecycle errors met since the last call (an ``ExceptionGroup``), if any."""
        with self._lock:
            errors, self._unraised = self._unraised, []
        if errors:
            raise ExceptionGroup(f"lifecycle prefect hooks: {len(errors)} errors", errors)

    def close(self) -> None:
        """Close the store the hooks opened (they open it on first use)."""
        with self._lock:
            runs, self._runs = self._runs, None
        if runs is not None:
            runs.close()

    # -- the hooks ----------------------------------------------------------------------------

    def _flow_running(self, flow: Any, flow_run: Any, state: Any) -> None:
        def go(runs: Runs) -> None:
            run = runs.create(
                self.dialect,
                name=self.run_name or str(flow.name),
                operation=_OPERATION.get(self.dialect),
                params={"prefect_flow_run": str(flow_run.id)},
            )
            self._run_of[str(flow_run.id)] = run.id
            self._known[run.id] = set()
            self.run_ids.append(run.id)
            runs.advance(run.id, "started")

        self._guard(go)

    def _task_running(self, task: Any, task_run: Any, state: Any) -> None:
        def go(runs: Runs, run_id: int) -> None:
            name = str(task_run.name)
            known = self._known.setdefault(run_id, set())
            if name not in known:
                runs.record(run_id, ev.ContainerAdded(name=name))
                known.add(name)
            elif state.name == "Retrying":
                runs.advance(run_id, "queued", container=name, reason="retry")
            runs.advance(run_id, "started", container=name)

        self._guard_task(task_run, go)

    def _task_completed(self, task: Any, task_run: Any, state: Any) -> None:
        self._guard_task(
            task_run,
            lambda runs, run_id: runs.advance(run_id, "succeeded", container=str(task_run.name)),
        )

    def _task_failed(self, task: Any, task_run: Any, state: Any) -> None:
        error = str(state.message or "failed")
        self._guard_task(
            task_run,
            lambda runs, run_id: runs.advance(
                run_id, "failed", container=str(task_run.name), error=error
            ),
        )

    def _flow_ended(self, flow: Any, flow_run: Any, state: Any) -> None:
        outcome = _FLOW_OUTCOME.get(str(state.type.name if state.type else ""), "failed")

        def go(runs: Runs) -> None:
            run_id = self._run_of.pop(str(flow_run.id), None)
            if run_id is None:
                return  # its start was not recorded: that error is in ``errors`` already
            known = self._known.pop(run_id, set())
            never_ran = [name for name in _task_run_names(flow_run.id) if name not in known]
            if never_ran:
                runs.record_many(run_id, [(None, [ev.ContainerAdded(name=n) for n in never_ran])])
            try:
                runs.finish(run_id, outcome, reason="not_ready", by="prefect")
            except PolicyViolation as exc:
                exc.add_note("prefect: the flow's own outcome; the run ends by its policy")
                self._failed(exc)
                runs.finish(run_id, reason="not_ready", by="prefect")

        self._guard(go)

    # -- plumbing -----------------------------------------------------------------------------

    def _open(self) -> Runs:
        with self._lock:
            if self._runs is None:
                runs = Runs(self.store)
                runs.__enter__()
                self._runs = runs
            return self._runs

    def _guard(self, fn: Callable[[Runs], None]) -> None:
        try:
            fn(self._open())
        except Exception as exc:  # Prefect would swallow it: keep it instead
            self._failed(exc)

    def _guard_task(self, task_run: Any, fn: Callable[[Runs, int], Any]) -> None:
        run_id = self._run_of.get(str(task_run.flow_run_id))
        if run_id is None:
            return  # a task outside a recorded flow (or the flow's start failed: in ``errors``)
        self._guard(lambda runs: fn(runs, run_id))

    def _failed(self, exc: Exception) -> None:
        _log.warning("lifecycle prefect hooks: %s", exc)
        with self._lock:
            self.errors.append(exc)
            self._unraised.append(exc)


def _task_run_names(flow_run_id: Any, *, settle: float = 0.6, timeout: float = 10.0) -> list[str]:
    """Every task run of a flow run, from Prefect's API (the ones no hook told us of).

    Prefect's server records task runs from the events its clients send, a little after they
    happen: read until the list has not changed for ``settle`` seconds (at most ``timeout``)."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: PLC0415

    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + timeout
    names: list[str] = []
    steady_since = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            found = sorted(str(t.name) for t in client.read_task_runs(flow_run_filter=flow_filter))
            now = time.monotonic()
            if found != names:
                names, steady_since = found, now
            elif now - steady_since >= settle or now >= deadline:
                return names
            time.sleep(0.1)
