"""Jobs: runs grouped by name, and the shapes ``--json`` prints.

A *job* is every run with the same ``Requested.name`` — a workflow (each run written by the
workflow SDK is a ``datatailr`` run named after the workflow) or any named run group (e.g.
Qualytics runs made with ``AsyncRuns.create(..., name="nightly")``). Runs without a name are
grouped per dialect under ``@dialect`` (``@qualytics``), a name the shell needs no quotes for; a
real job called ``@qualytics`` wins over the group.

A workflow's definition is the ``workflow`` entry of its runs' ``Requested.params``::

    {"tasks": [{"id": ..., "name": ..., "function": "module.qualname",
                "depends_on": [names]}], "schedule": null}
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import anyio
import msgspec

from lifecycle import events as ev
from lifecycle._errors import LifecycleError, UnknownRun
from lifecycle._runs import AsyncRuns
from lifecycle._stores import RunGroup, RunSummary
from lifecycle._views import RunView, run_stream

__all__ = [
    "HistoryEntry",
    "JobDetail",
    "JobRow",
    "LogLine",
    "TaskInfo",
    "VersionInfo",
    "find_job",
    "job_detail",
    "job_key",
    "job_of",
    "job_rows",
    "levels",
    "requested",
    "run_of_job",
    "workflow_tasks",
]

HISTORY = 10


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One badge of a job's history strip."""

    run_id: int
    state: str
    outcome: str | None
    warning: bool


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """One line of ``lifecycle job ls``: the job and its latest run. ``history`` is the last
    ten runs, oldest first."""

    name: str
    dialect: str
    operation: str
    tasks: int
    runs: int
    state: str
    outcome: str | None
    terminal: bool
    warning: bool
    last_run_id: int
    last_run_at: _dt.datetime | None
    history: list[HistoryEntry]
    schedule: ScheduleInfo | None = None


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A job's schedule as its definition records it, in plain words, with its next due times,
    and what the scheduler made of it (its ledger, the deploy run ``deploy_run``): ``status`` is
    ``armed`` (run ``armed_run`` waits for ``next_due[0]``), ``paused``, ``not armed`` (deployed,
    no scheduler has run since), ``expired``, ``stopped`` (undeployed or replaced), or ``""``
    for a schedule never deployed (next due times from now)."""

    cron: str
    timezone: str
    end: _dt.datetime | None
    explain: str
    next_due: list[_dt.datetime]
    status: str = ""
    deploy_run: int | None = None
    armed_run: int | None = None


def schedule_info(recorded: Any, now: _dt.datetime | None = None) -> ScheduleInfo | None:
    """``ScheduleInfo`` from a definition's ``schedule`` (``None`` if it has none, or one this
    version cannot read)."""
    from lifecycle._schedule import as_schedule

    if not recorded:
        return None
    try:
        schedule = as_schedule(recorded)
    except (LifecycleError, ValueError):
        return None
    if schedule is None:
        return None
    now = now or _dt.datetime.now(_dt.UTC)
    return ScheduleInfo(
        cron=schedule.cron,
        timezone=schedule.timezone,
        end=schedule.until,
        explain=schedule.explain(),
        next_due=schedule.due_times(now, 3),
    )


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One task of a workflow definition."""

    name: str
    id: str | int | None = None
    function: str = ""
    depends_on: list[str] = msgspec.field(default_factory=list)


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One job version and the runs made with it."""

    job_version: int | None
    runs: int
    first_run_at: _dt.datetime | None
    last_run_at: _dt.datetime | None
    last_run_id: int


class JobDetail(msgspec.Struct, frozen=True, kw_only=True):
    """``lifecycle job get``: the definition as the latest run recorded it."""

    name: str
    kind: str  # "workflow", or "runs" for a named group of other runs
    dialect: str
    operation: str
    runs: int
    last_run_id: int
    state: str
    outcome: str | None
    warning: bool
    tasks: list[TaskInfo]
    edges: list[tuple[str, str]]
    schedule: ScheduleInfo | None
    versions: list[VersionInfo]


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    """One log entry of ``lifecycle log read --json`` (JSON Lines). ``task`` is ``None`` for the
    run's own log; ``text`` is exactly as recorded."""

    run_id: int
    task: str | None
    position: int
    recorded_at: _dt.datetime
    level: str
    stream: str
    text: str


def job_key(summary: RunSummary) -> str:
    """The job a run belongs to: its name, or ``@dialect`` for unnamed runs."""
    return summary.name or f"@{summary.dialect}"


async def job_of(runs: AsyncRuns, name: str, **filters: Any) -> list[RunSummary]:
    """The runs of job ``name``, newest first (``filters`` go to ``AsyncRuns.list``)."""
    rows = await runs.list(name=name, **filters)
    if rows or not name.startswith("@") or not name[1:]:
        return rows
    if filters and await runs.list(name=name, limit=1):
        return rows  # a real job called "@…", with no runs in the window
    return await runs.list(name="", dialect=name[1:], **filters)


async def find_job(runs: AsyncRuns, name: str, *, limit: int | None = None) -> list[RunSummary]:
    """The runs of job ``name`` (at most ``limit``), newest first. Raises ``UnknownRun`` when
    there is none."""
    rows = await job_of(runs, name, limit=limit)
    if not rows:
        raise UnknownRun(
            f"no job named {name!r} in {runs.store.url} (`lifecycle job ls` lists the jobs)"
        )
    return rows


async def run_of_job(runs: AsyncRuns, name: str, run_id: int | None) -> RunView:
    """Run ``run_id`` of job ``name`` (its latest run when ``None``). Raises ``UnknownRun``."""
    if run_id is None:
        run_id = (await find_job(runs, name, limit=1))[0].run_id
        return await runs.get(run_id)
    view = await runs.get(run_id)
    if name not in (view.name, f"@{view.dialect}" if not view.name else view.name):
        raise UnknownRun(
            f"run {run_id} is not a run of job {name!r} "
            f"(it is a run of {view.name or '@' + view.dialect!r})"
        )
    return view


async def requested(runs: AsyncRuns, run_id: int) -> ev.Requested:
    """The ``Requested`` fact that created run ``run_id``."""
    head = await runs.store.read([run_stream(run_id)])
    if not head or not isinstance(head[0].event, ev.Requested):
        raise UnknownRun(f"no run {run_id} in {runs.store.url}")
    return head[0].event


def workflow_tasks(req: ev.Requested) -> tuple[list[TaskInfo], Any] | None:
    """The tasks and schedule of a workflow run's definition, or ``None`` if it has none (or one
    that does not have the agreed shape)."""
    spec = req.params.get("workflow") if isinstance(req.params, dict) else None
    if not isinstance(spec, dict):
        return None
    try:
        tasks = msgspec.convert(spec.get("tasks") or [], list[TaskInfo])
    except msgspec.ValidationError:
        return None
    return tasks, spec.get("schedule")


def levels(tasks: Sequence[TaskInfo]) -> dict[str, int]:
    """Each task's depth in the DAG (0 for tasks with no dependencies); a dependency on an
    unknown task counts as none, and a cycle (which a valid definition cannot have) as depth 0."""
    by_name = {t.name: t for t in tasks}
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in visiting or name not in by_name:
            return -1
        visiting.add(name)
        d = 1 + max((visit(dep) for dep in by_name[name].depends_on), default=-1)
        visiting.discard(name)
        depth[name] = d
        return d

    for t in tasks:
        visit(t.name)
    return depth


def _history(rows: Sequence[RunSummary]) -> list[HistoryEntry]:
    return [
        HistoryEntry(run_id=r.run_id, state=r.state, outcome=r.outcome, warning=r.warning)
        for r in reversed(rows[:HISTORY])
    ]


async def job_rows(runs: AsyncRuns) -> list[JobRow]:
    """Every job with its latest run and history, by name. Reads the read model's groups
    (one indexed aggregate), the last ``HISTORY`` runs of each job (queued at once), and the
    ``Requested`` facts of the latest runs (one read) — never every run: it answers about as
    fast over 100,000 runs as over 100."""
    jobs: dict[str, list[RunGroup]] = {}
    for group in await runs.store.run_groups():
        jobs.setdefault(group.name or f"@{group.dialect}", []).append(group)
    recent: dict[str, list[RunSummary]] = {}

    async def last_runs(name: str, groups: list[RunGroup]) -> None:
        rows: list[RunSummary] = []
        for g in groups:  # two only for a job called "@dialect" beside that dialect's unnamed
            rows += await runs.list(
                name=g.name, dialect=None if g.name else g.dialect, limit=HISTORY
            )
        if rows:  # else its runs went between the two reads
            rows.sort(key=lambda r: r.run_id, reverse=True)
            recent[name] = rows[:HISTORY]

    async with anyio.create_task_group() as tg:  # the store's queue stays full: no idle hops
        for name, groups in jobs.items():
            tg.start_soon(last_runs, name, groups)
    heads = await runs.store.read([run_stream(rows[0].run_id) for rows in recent.values()])
    tasks = {r.stream: len(r.event.containers) for r in heads if isinstance(r.event, ev.Requested)}
    deploys = {  # a job's newest deploy run among its recent runs: its schedule's ledger
        run_stream(rows[0].run_id): next((r.run_id for r in rows if r.operation == "deploy"), None)
        for rows in recent.values()
    }
    schedules = {
        r.stream: await with_ledger(
            runs, schedule_info(_recorded_schedule(r.event)), r, deploys.get(r.stream)
        )
        for r in heads
        if isinstance(r.event, ev.Requested) and _recorded_schedule(r.event)
    }
    out = []
    for name in sorted(recent, key=lambda n: (n.startswith("@"), n.casefold(), n)):
        rows = recent[name]
        latest = rows[0]
        out.append(
            JobRow(
                name=name,
                dialect=latest.dialect,
                operation=latest.operation,
                tasks=tasks.get(run_stream(latest.run_id), 0),
                runs=sum(g.runs for g in jobs[name]),
                state=latest.state,
                outcome=latest.outcome,
                terminal=latest.terminal,
                warning=latest.warning,
                last_run_id=latest.run_id,
                last_run_at=latest.started_at or latest.created_at,
                history=_history(rows),
                schedule=schedules.get(run_stream(latest.run_id)),
            )
        )
    return out


async def with_ledger(
    runs: AsyncRuns, info: ScheduleInfo | None, head: ev.Recorded, fallback: int | None = None
) -> ScheduleInfo | None:
    """``info`` with what the scheduler recorded, found from the job's latest run ``head``: a
    deploy run is the ledger itself, a run the scheduler armed names it (``deploy_run``); after
    a run started by hand, the job's newest deploy run ``fallback`` (if the caller knows one)."""
    req = head.event
    if info is None or not isinstance(req, ev.Requested):
        return info
    run_id = int(head.stream.partition("-")[2])
    deploy_run = run_id if req.operation == "deploy" else req.params.get("deploy_run", fallback)
    if not isinstance(deploy_run, int):
        return info
    from lifecycle._schedule import as_schedule
    from lifecycle._workflow._scheduler import ledger

    state, paused, armed = await ledger(runs, deploy_run)
    next_due = info.next_due
    status = {"Ready": "not armed", "Expired": "expired", "Stopped": "stopped"}.get(state, "")
    if state == "Scheduled":
        status = "paused" if paused else "armed"
    if armed is not None and armed[1] is not None and status in ("armed", "paused"):
        schedule = as_schedule(_recorded_schedule(req))
        assert schedule is not None
        next_due = [armed[1], *schedule.due_times(armed[1], 2)]
    elif status in ("expired", "stopped"):
        next_due = []
    return msgspec.structs.replace(
        info,
        status=status,
        next_due=next_due,
        deploy_run=deploy_run,
        armed_run=armed[0] if armed and status in ("armed", "paused") else None,
    )


def _recorded_schedule(req: ev.Requested) -> Any:
    spec = req.params.get("workflow") if isinstance(req.params, dict) else None
    return spec.get("schedule") if isinstance(spec, dict) else None


async def job_detail(runs: AsyncRuns, name: str) -> JobDetail:
    """The definition of job ``name`` as its latest run recorded it, and its versions."""
    rows = await find_job(runs, name)
    latest = rows[0]
    req = await requested(runs, latest.run_id)
    found = workflow_tasks(req)
    if found is not None:
        tasks, schedule = found
        kind = "workflow"
    else:
        tasks, schedule = [TaskInfo(name=c) for c in req.containers], None
        kind = "runs"
    known = {t.name for t in tasks}
    edges = [(dep, t.name) for t in tasks for dep in t.depends_on if dep in known]
    versions: dict[int | None, list[RunSummary]] = {}
    for row in rows:
        versions.setdefault(row.job_version, []).append(row)
    return JobDetail(
        name=name,
        kind=kind,
        dialect=latest.dialect,
        operation=latest.operation,
        runs=len(rows),
        last_run_id=latest.run_id,
        state=latest.state,
        outcome=latest.outcome,
        warning=latest.warning,
        tasks=tasks,
        edges=edges,
        schedule=await with_ledger(
            runs,
            schedule_info(schedule),
            (await runs.store.read([run_stream(latest.run_id)]))[0],
            next((r.run_id for r in rows if r.operation == "deploy"), None),
        ),
        versions=[
            VersionInfo(
                job_version=v,
                runs=len(group),
                first_run_at=group[-1].created_at,
                last_run_at=group[0].created_at,
                last_run_id=group[0].run_id,
            )
            for v, group in sorted(
                versions.items(), key=lambda item: (item[0] is None, -(item[0] or 0))
            )
        ],
    )
