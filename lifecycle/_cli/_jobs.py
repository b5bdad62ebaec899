"""``lifecycle job ls | get | runs``: jobs, their definitions and their run history."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import click

from ._base import open_runs, parse_when, run_async, settings
from ._model import (
    JobDetail,
    JobRow,
    ScheduleInfo,
    find_job,
    job_detail,
    job_of,
    job_rows,
    levels,
)
from ._render import (
    badge,
    console,
    fmt_age,
    fmt_duration,
    fmt_end,
    fmt_time,
    history_strip,
    print_json,
    run_id_cell,
    safe,
)

if TYPE_CHECKING:
    from rich.text import Text

    from lifecycle._stores import RunSummary

__all__ = ["job", "json_option"]


def json_option(fn: click.decorators.FC) -> click.decorators.FC:
    """``--json``: print JSON for scripts instead of tables (also ``lifecycle --json …``)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(fn)


def wants_json(as_json: bool) -> bool:
    return as_json or settings().json


@click.group(short_help="Jobs: workflows and named groups of runs.")
def job() -> None:
    """Jobs: workflows and other named groups of runs.

    A job is every run with the same name. Runs without a name are grouped per dialect as
    @DIALECT (e.g. @qualytics).
    """


@job.command("ls", short_help="Every job: state, last run, history of 10 runs.")
@json_option
def job_ls(as_json: bool) -> None:
    """List every job: dialect, tasks, current state, last run, and a history strip of its last
    10 runs (oldest on the left: ✓ succeeded, ! succeeded with a warning, ✗ failed, ⊘ cancelled,
    ▸ active)."""
    cfg = settings()

    async def load() -> list[JobRow]:
        async with open_runs(cfg) as runs:
            return await job_rows(runs)

    rows = run_async(load)
    if wants_json(as_json):
        print_json(rows)
        return
    out = console()
    if not rows:
        out.print(f"No jobs in {cfg.url}.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    longest = max(len(row.name) for row in rows)
    table.add_column("JOB", min_width=min(longest, 24), overflow="fold")
    for column in ("DIALECT", "TASKS", "STATE", "LAST RUN", "RUN", "LAST 10 RUNS"):
        table.add_column(column, no_wrap=True, justify="right" if column == "TASKS" else "left")
    scheduled = any(row.schedule for row in rows)  # the column only where a job has one
    if scheduled:
        table.add_column("SCHEDULE", overflow="fold")
    for row in rows:
        cells: list[Text | str] = [
            safe(row.name, "dim italic" if row.name.startswith("@") else "bold"),
            safe(row.dialect),
            str(row.tasks) if row.tasks else "-",
            badge(row.state, row.outcome),
            fmt_age(row.last_run_at),
            run_id_cell(row.last_run_id, row.warning),
            history_strip([(h.outcome, h.warning) for h in row.history]),
        ]
        if scheduled:
            cells.append(schedule_cell(row.schedule, short=True))
        table.add_row(*cells)
    out.print(table)


def schedule_cell(info: ScheduleInfo | None, *, short: bool = False) -> Text:
    """A schedule in plain words with its next due time(s) (three in ``job get``)."""
    from rich.text import Text

    if info is None:
        return Text("none", style="dim")
    text = Text.assemble(safe(info.cron, "bold"), " ", safe(info.explain))
    status = _STATUS.get(info.status)
    if status:
        text.append(f"; {status[0]}" if short else f"\n{status[0]}", style=status[1])
        if info.armed_run is not None and not short:
            text.append(f" (run {info.armed_run})", style="dim")
    shown = info.next_due[:1] if short else info.next_due
    if shown:
        when = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in shown)
        text.append(f"; next {when}" if short else f"\nnext due: {when}")
    elif info.status not in ("expired", "stopped"):
        text.append("; no due time left: expired", style="dim")
    return text


_STATUS = {
    "armed": ("armed", "cyan"),
    "paused": ("paused (`lifecycle job resume`)", "yellow"),
    "not armed": ("not armed yet: no scheduler has run (`lifecycle scheduler`)", "yellow"),
    "expired": ("expired: its end date has passed", "dim"),
    "stopped": ("undeployed", "dim"),
}
"""How ``schedule_cell`` shows what the scheduler made of a schedule (``ScheduleInfo.status``)."""


@job.command("pause", short_help="Stop firing a scheduled job until resumed.")
@click.argument("name")
def job_pause(name: str) -> None:
    """Pause the schedule of deployed job NAME: the scheduler leaves it alone until
    `lifecycle job resume NAME` (recorded as SchedulePaused)."""
    _schedule_action(name, "pause")


@job.command("resume", short_help="Fire a paused job again, from its next due time.")
@click.argument("name")
def job_resume(name: str) -> None:
    """Resume the schedule of job NAME from its next due time after now; the due times that
    passed while it was paused are recorded as skipped, not caught up."""
    _schedule_action(name, "resume")


@job.command("undeploy", short_help="End a deployed job and its schedule.")
@click.argument("name")
def job_undeploy(name: str) -> None:
    """End deployed job NAME: its deploy run and the run armed for its next time end Stopped.
    Its past runs stay; `lifecycle deploy` deploys it again."""
    _schedule_action(name, "undeploy")


def _schedule_action(name: str, action: str) -> None:
    from lifecycle._workflow import _scheduler

    cfg = settings()

    async def act() -> object:
        async with open_runs(cfg, write=True) as runs:
            do = getattr(_scheduler, f"{action}_job")
            return await do(runs, name, by=_whoami())

    done = run_async(act)
    out = console()
    if action == "undeploy":
        out.print(safe(f"undeployed {name} (deploy run {done}): Stopped"))
    elif done:
        out.print(safe(f"{action}d {name}"))
    else:
        out.print(safe(f"{name} was already {'paused' if action == 'pause' else 'running'}"))


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "user"


@job.command("get", short_help="A job's tasks, edges, schedule and versions.")
@click.argument("name")
@json_option
def job_get(name: str, as_json: bool) -> None:
    """Show the definition of job NAME: its tasks and their edges (the DAG as text), its
    schedule, and the job versions it has run with."""
    cfg = settings()

    async def load() -> JobDetail:
        async with open_runs(cfg) as runs:
            return await job_detail(runs, name)

    detail = run_async(load)
    if wants_json(as_json):
        print_json(detail)
        return
    render_detail(detail)


def render_detail(d: JobDetail) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Job", safe(d.name, "bold"))
    head.add_row("Kind", d.kind)
    head.add_row("Dialect", Text.assemble(safe(d.dialect), " / ", safe(d.operation)))
    head.add_row("Schedule", schedule_cell(d.schedule))
    last = Text.assemble(
        "run ", str(d.last_run_id), " ", badge(d.state, d.outcome), f" ({d.runs} runs in all)"
    )
    if d.warning:
        last.append(" ⚠", style="bold yellow")
    head.add_row("Latest", last)
    out.print(head)

    if d.tasks:
        depth = levels(d.tasks)
        ordered = sorted(d.tasks, key=lambda t: depth.get(t.name, 0))
        tasks = Table(title=f"Tasks ({len(d.tasks)})", title_justify="left", box=None)
        tasks.add_column("LEVEL", justify="right")
        tasks.add_column("TASK", style="bold")
        if d.kind == "workflow":
            tasks.add_column("FUNCTION")
            tasks.add_column("DEPENDS ON")
        for t in ordered:
            cells: list[Text | str] = [str(depth.get(t.name, 0)), safe(t.name)]
            if d.kind == "workflow":
                cells += [safe(t.function or "-"), safe(", ".join(t.depends_on) or "-")]
            tasks.add_row(*cells)
        out.print()
        out.print(tasks)
    if d.edges:
        out.print()
        out.print(Text(f"Edges ({len(d.edges)})", style="italic"))
        for source, dest in d.edges:
            out.print(Text.assemble("  ", safe(source), " → ", safe(dest)))

    versions = Table(title="Versions", title_justify="left", box=None)
    for column in ("VERSION", "RUNS", "FIRST RUN", "LAST RUN", "LATEST RUN ID"):
        versions.add_column(column, justify="right" if column != "VERSION" else "left")
    for v in d.versions:
        versions.add_row(
            "-" if v.job_version is None else str(v.job_version),
            str(v.runs),
            fmt_time(v.first_run_at),
            fmt_time(v.last_run_at),
            str(v.last_run_id),
        )
    out.print()
    out.print(versions)


@job.command("runs", short_help="A job's run history, newest first.")
@click.argument("name")
@click.option(
    "--since",
    metavar="TIME",
    callback=parse_when,
    help="Only runs created at or after TIME (ISO 8601, or an age: 12h).",
)
@click.option(
    "--until", metavar="TIME", callback=parse_when, help="Only runs created at or before TIME."
)
@click.option(
    "--limit",
    "-n",
    metavar="N",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most N runs, newest first.",
)
@json_option
def job_runs(
    *,
    name: str,
    since: _dt.datetime | None,
    until: _dt.datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the run history of job NAME, newest first: run id (⚠ = the Warning indicator: it
    succeeded, but logged warnings or had a task fail), state, start, end, duration, job version,
    and the original run of a rerun."""
    cfg = settings()

    async def load() -> list[RunSummary]:
        async with open_runs(cfg) as runs:
            rows = await job_of(runs, name, start_time=since, end_time=until, limit=limit)
            if not rows:
                await find_job(runs, name, limit=1)  # no such job: say so
            return rows

    rows = run_async(load)
    if wants_json(as_json):
        print_json(rows)
        return
    out = console()
    if not rows:
        out.print(f"No runs of {name!r} in that window.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    narrow = out.width < 120  # then short headers and start times, so the reason has room
    headers = ("RUN", "STATE", "STARTED", "ENDED", "DURATION", "VERSION", "ORIGINAL")
    if narrow:
        headers = ("RUN", "STATE", "STARTED", "ENDED", "TOOK", "VER", "ORIG")
    for column in headers:
        table.add_column(column, no_wrap=True, min_width=len(column))
    reasons = any(r.reason for r in rows)
    if reasons:
        table.add_column("REASON", overflow="fold", min_width=12, ratio=1)
    for r in rows:
        cells: list[Text | str] = [
            run_id_cell(r.run_id, r.warning),
            badge(r.state, r.outcome),
            fmt_time(r.started_at or r.created_at, short=narrow),
            fmt_end(r.started_at or r.created_at, r.ended_at),
            fmt_duration(r.started_at or r.created_at, r.ended_at),
            "-" if r.job_version is None else str(r.job_version),
            "-" if r.original_run_id is None else str(r.original_run_id),
        ]
        if reasons:
            cells.append(safe(r.reason or ""))
        table.add_row(*cells)
    out.print(table)
