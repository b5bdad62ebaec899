"""``Workflow``: the run history of a workflow — runs, per-task details, logs, results, reruns.

The seed's SDK, on this library's store. A workflow run is a ``datatailr`` run with
``operation="workflow"`` whose ``Requested.name`` is the workflow's name and whose containers are
its tasks (display names); ``Requested.params["workflow"]["tasks"]`` records each task's id,
name, function and upstream names. So:

- ``runs()`` reads the store's ``runs`` read model;
- ``run_details()`` folds one run (state and timing of every task);
- ``logs()`` reads the ``LogRecorded`` facts of the task's container stream;
- ``result()`` loads the blob its ``ResultStored`` fact points to.

:class:`AsyncWorkflow` does it with ``await``; :class:`Workflow` is the blocking twin the seed
documents. ``task_name`` is checked against the *current* definition (the version run last)
and raises ``ValueError`` when it is not there; ``task_id`` is looked up in the run itself, so it
addresses tasks that the current definition no longer has.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lifecycle import events as ev
from lifecycle._errors import UnknownRun
from lifecycle._runs import AsyncRuns
from lifecycle._stores import RunSummary
from lifecycle._views import RunView, container_stream

from ._dag import WorkflowError
from ._results import load_result
from ._store import StoreLike, call_blocking
from ._version import load_registry

__all__ = ["AsyncWorkflow", "Environment", "Workflow", "run_entry"]

T = TypeVar("T")

OPERATION = "workflow"
"""The operation of every workflow run (the agreed layout the CLI reads)."""

_WRITES: dict[str, int] = {}
"""How many times this process has written runs of each workflow (by name): a
:class:`Workflow`'s cached history is stale once this has moved since it was fetched."""


def note_write(name: str) -> None:
    """Record that runs of workflow ``name`` were written (created, rerun, ended) here."""
    _WRITES[name] = _WRITES.get(name, 0) + 1


class Environment(enum.Enum):
    """Datatailr's environments. ``Workflow(name, Environment.PROD)`` reads the store named by
    ``LIFECYCLE_STORE_PROD`` when that is set (as ``%lifecycle_runs --env prod`` does), else
    the default store: one local history, whatever the environment."""

    DEV = "dev"
    PRE = "pre"
    PROD = "prod"


def _utc(value: _dt.datetime | None) -> _dt.datetime | None:
    """Naive datetimes are local time (as ``datetime.now()`` gives them)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.astimezone(_dt.UTC)


def run_entry(run: RunSummary | RunView) -> dict[str, Any]:
    """One run as ``runs()`` lists it."""
    return {
        "run_id": run.run_id,
        "state": run.state,
        "start_time": run.started_at or run.created_at,
        "end_time": run.ended_at,
        "job_version": run.job_version,
        "original_run_id": run.original_run_id,
        "warning": run.warning,
        "reason": run.reason,
    }


def _tasks_of(view: RunView) -> list[dict[str, Any]]:
    recorded = view.params.get("workflow", {}).get("tasks")
    if recorded:
        return list(recorded)
    return [
        {"id": name, "name": name, "function": "", "depends_on": []} for name in view.containers
    ]


class AsyncWorkflow:
    """The run history of workflow ``name`` on an :class:`AsyncRuns`."""

    def __init__(self, name: str, runs: AsyncRuns) -> None:
        self.name = name
        self.runs_service = runs
        self._current: list[str] | None = None

    async def exists(self) -> bool:
        """Whether the store knows this workflow (a registered version or a run)."""
        if (await load_registry(self.runs_service.store, self.name)).versions:
            return True
        return bool(await self._list(limit=1))

    async def _list(self, **kwargs: Any) -> list[RunSummary]:
        rows = await self.runs_service.list(name=self.name, dialect="datatailr", **kwargs)
        return [r for r in rows if r.operation == OPERATION]

    async def runs(
        self, start_time: _dt.datetime | None = None, end_time: _dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Runs, newest first, whose start time is within ``[start_time, end_time]``."""
        start, end = _utc(start_time), _utc(end_time)
        # created_at <= start time, so the store can apply the upper bound; the rest is here
        rows = await self._list(end_time=end)
        return [
            entry
            for entry in map(run_entry, rows)
            if (start is None or entry["start_time"] >= start)
            and (end is None or entry["start_time"] <= end)
        ]

    async def view(self, run_id: int) -> RunView:
        """The run, checked to be one of this workflow's. Raises ``UnknownRun``."""
        view = await self.runs_service.get(run_id)
        if view.name != self.name or view.operation != OPERATION:
            raise UnknownRun(
                f"run {run_id} is not a run of workflow {self.name!r} "
                f"(it is {view.dialect} {view.operation} {view.name!r})"
            )
        return view

    async def run_details(self, run_id: int) -> dict[str, Any]:
        """The run and every task of it: id, name, state, times, reason, cached_from,
        has_result and result_codec (``msgpack``, or ``pickle``: loading it runs code)."""
        view = await self.view(run_id)
        tasks = []
        for record in _tasks_of(view):
            c = view.containers.get(record["name"])
            tasks.append(
                {
                    **record,
                    "state": c.state if c else None,
                    "start_time": c.started_at if c else None,
                    "end_time": c.ended_at if c else None,
                    "reason": c.reason if c else None,
                    "cached_from": c.cached_from if c else None,
                    "has_result": bool(c and c.result),
                    "result_codec": c.result.codec if c and c.result else None,
                }
            )
        return {**run_entry(view), "name": self.name, "tasks": tasks}

    async def current_tasks(self, *, reload: bool = False) -> list[str]:
        """Task names of the current definition: the version run (or deployed) last, else the
        tasks of the newest run."""
        if self._current is None or reload:
            registry = await load_registry(self.runs_service.store, self.name)
            entry = registry.get(None)
            if entry is not None:
                self._current = [t["name"] for t in entry.tasks]
            else:
                newest = await self._list(limit=1)
                view = await self.runs_service.get(newest[0].run_id) if newest else None
                self._current = [t["name"] for t in _tasks_of(view)] if view else []
        return self._current

    async def task(
        self, run_id: int, task_name: str | None, task_id: str | None
    ) -> tuple[RunView, str | None]:
        """The run and the container of the task addressed (``None``: the current definition
        has the task, this older run has not). Raises ``ValueError`` for an unknown task."""
        if (task_name is None) == (task_id is None):
            raise WorkflowError("pass exactly one of task_name= or task_id=")
        view = await self.view(run_id)
        recorded = _tasks_of(view)
        if task_id is not None:
            found = next((t for t in recorded if t["id"] == task_id), None)
            if found is None:
                ids = ", ".join(t["id"] for t in recorded)
                raise WorkflowError(f"run {run_id} has no task with id {task_id!r} (ids: {ids})")
            return view, found["name"]
        if task_name not in await self.current_tasks() and task_name not in (
            await self.current_tasks(reload=True)
        ):
            known = ", ".join(await self.current_tasks())
            raise WorkflowError(
                f"workflow {self.name!r} has no task named {task_name!r} (its tasks: {known}); "
                "a task of an older version is addressed with task_id= from run_details()"
            )
        return view, (task_name if task_name in view.containers else None)

    async def logs(
        self,
        run_id: int,
        task_name: str | None = None,
        *,
        task_id: str | None = None,
        stderr: bool = False,
        lines: int | None = 5000,
    ) -> str:
        """The task's captured stdout (or stderr): the last ``lines`` lines (all with ``None``).
        A failed task's traceback is part of its stderr."""
        view, container = await self.task(run_id, task_name, task_id)
        if container is None:
            return ""
        records = await self.runs_service.store.read([container_stream(view.run_id, container)])
        wanted = "stderr" if stderr else "stdout"
        chunks = [
            r.event.text
            for r in records
            if isinstance(r.event, ev.LogRecorded) and r.event.stream == wanted
        ]
        text = "".join(c if c.endswith("\n") else c + "\n" for c in chunks)
        if stderr:
            for r in records:
                fact = r.event
                if isinstance(fact, ev.ExecutionFailed) and fact.traceback.strip() not in text:
                    text += fact.traceback.rstrip("\n") + "\n"
        all_lines = text.splitlines()
        if lines is not None:
            if lines < 0:
                raise WorkflowError(f"lines must be >= 0, not {lines}")
            all_lines = all_lines[len(all_lines) - lines :] if lines else []
        return "".join(line + "\n" for line in all_lines)

    async def result(
        self, run_id: int, task_name: str | None = None, *, task_id: str | None = None
    ) -> Any:
        """The task's return value as the original Python object; ``None`` when nothing is
        stored (still running, raised, never ran, or the cache entry is gone)."""
        view, container = await self.task(run_id, task_name, task_id)
        c = view.containers.get(container) if container else None
        if c is None or c.result is None:
            return None
        return await load_result(self.runs_service.store, c.result)


class Workflow:
    """A workflow's run history, blocking, as the seed documents it::

        wf = Workflow(name="daily_sales_report", get_existing=True)
        for run in wf.runs():
            print(run["run_id"], run["state"], run["start_time"])

    ``store`` is where runs are kept (default: ``LIFECYCLE_STORE`` or the default path; see
    :func:`default_store_url`). With ``get_existing=True`` the workflow must already be in the
    store (it has run, or was deployed), else ``ValueError``. ``environment`` (without
    ``store``) picks the store of ``LIFECYCLE_STORE_<ENVIRONMENT>`` when that variable is set
    (see :class:`Environment`).
    """

    def __init__(
        self,
        name: str,
        environment: Environment | str | None = None,
        get_existing: bool = False,
        *,
        store: StoreLike = None,
    ) -> None:
        self.name = name
        self.environment = environment
        if store is None and environment is not None:
            from ._environments import environments  # noqa: PLC0415

            wanted = environment.value if isinstance(environment, Environment) else environment
            store = environments().get(str(wanted).lower())
        self.store = store
        self._runs: list[dict[str, Any]] | None = None
        self._runs_at = -1  # _WRITES[name] when _runs was fetched
        self._current: list[str] | None = None
        if get_existing and not self._call(lambda w: w.exists()):
            raise WorkflowError(
                f"no workflow named {name!r} in the store; run it first "
                "(e.g. my_workflow(local_run=True)) or check LIFECYCLE_STORE"
            )

    def _call(self, fn: Callable[[AsyncWorkflow], Awaitable[T]]) -> T:
        async def main(runs: AsyncRuns) -> T:
            wf = AsyncWorkflow(self.name, runs)
            wf._current = self._current
            try:
                return await fn(wf)
            finally:
                self._current = wf._current

        return call_blocking(self.store, main)

    def runs(
        self,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        refresh: bool = False,
    ) -> list[dict[str, Any]]:
        """The run history, newest first: dicts with ``run_id``, ``state``, ``start_time``,
        ``end_time`` (datetimes, UTC), ``job_version``, ``original_run_id`` (and ``warning``,
        ``reason``). Only runs whose start time falls within ``[start_time, end_time]``; either
        bound may be omitted. The history is fetched on the first call and cached on this
        instance until this process writes runs of the workflow (a run, a rerun); ``refresh=True``
        fetches it again (e.g. for runs written by another process)."""
        written = _WRITES.get(self.name, 0)
        if self._runs is None or refresh or self._runs_at != written:
            self._runs = self._call(lambda w: w.runs())
            self._runs_at = written
        start, end = _utc(start_time), _utc(end_time)
        return [
            dict(r)
            for r in self._runs
            if (start is None or r["start_time"] >= start)
            and (end is None or r["start_time"] <= end)
        ]

    def run_details(self, run_id: int) -> dict[str, Any]:
        """``{"run_id", "state", ..., "tasks": [{"id", "name", "state", "start_time",
        "end_time", "reason", "cached_from", "function", "depends_on", "has_result",
        "result_codec", ...}]}``. ``result_codec`` is ``"pickle"`` for a result that only
        unpickling gives back: loading it runs code from the store, so trust the store first."""
        return self._call(lambda w: w.run_details(run_id))

    def logs(
        self,
        run_id: int,
        task_name: str | None = None,
        stderr: bool = False,
        lines: int | None = 5000,
        *,
        task_id: str | None = None,
    ) -> str:
        """The captured stdout (``stderr=True``: stderr) of one task of one run, the last
        ``lines`` lines. ``ValueError`` if ``task_name`` is not a task of the workflow."""
        return self._call(
            lambda w: w.logs(run_id, task_name, task_id=task_id, stderr=stderr, lines=lines)
        )

    def result(
        self, run_id: int, task_name: str | None = None, *, task_id: str | None = None
    ) -> Any:
        """The task's return value, or ``None`` when none is stored. ``ValueError`` if
        ``task_name`` is not a task of the workflow."""
        return self._call(lambda w: w.result(run_id, task_name, task_id=task_id))

    def rerun(
        self,
        run_id: int,
        from_task: str | None = None,
        full: bool = False,
        version: int | None = None,
        *,
        adapter: Any = "inprocess",
        max_parallel: int | None = None,
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Run again, as a new run with ``original_run_id=run_id``, and wait for it. See
        :func:`lifecycle._workflow._run.rerun` for what is executed and what is reused."""
        from ._run import rerun  # noqa: PLC0415  (the engine is imported only to run)

        view = self._call(
            lambda w: rerun(
                w,
                run_id,
                from_task=from_task,
                full=full,
                version=version,
                adapter=adapter,
                max_parallel=max_parallel,
                progress=progress,
            )
        )
        return run_entry(view)
