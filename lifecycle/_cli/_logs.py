"""``lifecycle log read``: the logs of a run and its tasks, optionally tailed live.

Log lines go to stdout; the header, live state changes and the closing line go to stderr, so
``lifecycle log read NAME > out.txt`` keeps only log text. Log text is data: control characters
are neutralised (see ``_render.neutralise``) and it is never read as markup. ``--json`` prints
JSON Lines with the text exactly as recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from lifecycle import events as ev
from lifecycle._dialects import dialect as find_dialect
from lifecycle._errors import UnknownRun
from lifecycle._views import RunFold, RunView, container_stream, parse_stream

from ._base import open_runs, run_async, settings
from ._jobs import wants_json
from ._model import LogLine, requested, run_of_job, workflow_tasks
from ._render import (
    badge,
    console,
    fmt_clock,
    fmt_duration,
    fmt_time,
    neutralise,
    print_json,
    safe,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from lifecycle._runs import AsyncRuns

__all__ = ["log"]

_RUN_LABEL = "(run)"


@click.group(short_help="Logs of runs and their tasks.")
def log() -> None:
    """Logs of runs and their tasks."""


@log.command("read", short_help="Logs of a run and its tasks; --follow tails.")
@click.argument("name")
@click.option(
    "--run",
    "run_id",
    metavar="ID",
    type=click.IntRange(min=1),
    help="Read run ID (default: the latest run).",
)
@click.option("--task", "-t", metavar="TASK", help="Only this task's log (its name or its id).")
@click.option("--stderr", "only_stderr", is_flag=True, help="Only what was written to stderr.")
@click.option(
    "--lines",
    "-n",
    metavar="N",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="Show the last N entries (with --follow: before tailing).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries until the run ends.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON Lines, one entry a line, with the text exactly as recorded.",
)
def log_read(
    *,
    name: str,
    run_id: int | None,
    task: str | None,
    only_stderr: bool,
    lines: int,
    follow: bool,
    as_json: bool,
) -> None:
    """Read the logs of job NAME: its latest run, or --run ID.

    Without --task every task's entries are shown, interleaved in the order they were recorded,
    each after its time and task name. With --follow the command tails a live run and exits when
    the run ends: 0 if it succeeded, 1 if it failed or was stopped.
    """
    cfg = settings()
    as_json = wants_json(as_json)
    out = console()
    err = console(stderr=True)

    async def go() -> RunView:
        async with open_runs(cfg) as runs:
            view = await run_of_job(runs, name, run_id)
            stream = await _task_stream(runs, view, task)
            width = max([len(_RUN_LABEL), *(len(c) for c in view.containers)])
            emit = _printer(out, as_json, view.run_id, None if stream else width)

            def keep(record: ev.Recorded) -> bool:
                fact = record.event
                return (
                    isinstance(fact, ev.LogRecorded)
                    and (stream is None or record.stream == stream)
                    and (not only_stderr or fact.stream == "stderr")
                )

            if not as_json:
                err.print(_header(view))
            records = await runs.history(view.run_id)
            backlog = [r for r in records if keep(r)]
            for record in backlog[-lines:] if lines else ():
                emit(record)
            if not backlog and not as_json:
                err.print("(no log entries yet)" if follow else "(no log entries)", style="dim")
            if not follow:
                return view
            seen = records[-1].position if records else 0
            tracker = RunFold(find_dialect(view.dialect), view.run_id)
            async for record in runs.follow(view.run_id):
                before = _state_of(tracker, record.stream)
                tracker.apply(record)
                if record.position <= seen:
                    continue
                if keep(record):
                    emit(record)
                after = _state_of(tracker, record.stream)
                if not as_json and after is not None and after[0] != (before or ("",))[0]:
                    err.print(_change(record, *after, width))
            return await runs.get(view.run_id)

    view = run_async(go)
    if follow:
        if not as_json:
            err.print(_footer(view))
        if view.outcome != "succeeded":
            raise click.exceptions.Exit(1)


def _state_of(tracker: RunFold, stream: str) -> tuple[str, str | None] | None:
    _, container = parse_stream(stream)
    acc = tracker.run if container is None else tracker.containers.get(container)
    return None if acc is None else (acc.state, acc.outcome)


async def _task_stream(runs: AsyncRuns, view: RunView, task: str | None) -> str | None:
    """The container stream ``--task`` names (a task name, or a task id of the definition)."""
    if task is None:
        return None
    if task in view.containers:
        return container_stream(view.run_id, task)
    found = workflow_tasks(await requested(runs, view.run_id))
    for t in found[0] if found else ():
        if t.id is not None and str(t.id) == task and t.name in view.containers:
            return container_stream(view.run_id, t.name)
    names = ", ".join(view.containers) or "none"
    raise UnknownRun(f"run {view.run_id} has no task {task!r} (tasks: {names})")


def _printer(out: Console, as_json: bool, run_id: int, width: int | None) -> Callable[..., None]:
    """A function printing one log record: a JSON line, or ``TIME [TASK] text`` per line."""
    from rich.text import Text

    def emit(record: ev.Recorded) -> None:
        fact = record.event
        assert isinstance(fact, ev.LogRecorded)
        _, container = parse_stream(record.stream)
        if as_json:
            entry = LogLine(
                run_id=run_id,
                task=container,
                position=record.position,
                recorded_at=record.recorded_at,
                level=fact.level,
                stream=fact.stream,
                text=fact.text,
            )
            print_json([entry], lines=True)
            return
        style = _style(fact)
        prefix = Text()  # styles on spans only: a base style would spill onto the text
        prefix.append(fmt_clock(record.recorded_at) + " ", style="dim")
        if width is not None:
            prefix.append_text(safe((container or _RUN_LABEL).ljust(width) + " ", "cyan"))
        body = fact.text[:-1] if fact.text.endswith("\n") else fact.text
        for part in body.split("\n"):
            line = prefix.copy()
            line.append(neutralise(part, multiline=False), style=style)
            out.print(line, soft_wrap=True)

    return emit


def _style(fact: ev.LogRecorded) -> str:
    if fact.level in ("error", "critical", "fatal"):
        return "bold red"
    if fact.level in ("warning", "warn"):
        return "yellow"
    if fact.stream == "stderr":
        return "red"
    if fact.stream == "system":
        return "dim"
    return ""


def _header(view: RunView) -> Text:
    from rich.text import Text

    head = Text.assemble(
        ("run ", "bold"),
        (str(view.run_id), "bold"),
        " of ",
        safe(view.name or view.dialect, "bold"),
    )
    head.append(" ")
    head.append_text(badge(view.state, view.outcome))
    if view.warning:
        head.append(" ⚠", style="bold yellow")
    head.append(f"  started {fmt_time(view.started_at or view.created_at)}", style="dim")
    return head


def _change(record: ev.Recorded, state: str, outcome: str | None, width: int) -> Text:
    from rich.text import Text

    _, container = parse_stream(record.stream)
    line = Text()
    line.append(fmt_clock(record.recorded_at) + " ", style="dim")
    line.append_text(safe((container or _RUN_LABEL).ljust(width) + " ", "cyan"))
    line.append("→ ", style="dim")
    line.append_text(badge(state, outcome))
    return line


def _footer(view: RunView) -> Text:
    from rich.text import Text

    line = Text.assemble("run ", str(view.run_id), " ")
    line.append_text(badge(view.state, view.outcome))
    if view.warning:
        line.append(" ⚠", style="bold yellow")
    line.append(f" after {fmt_duration(view.started_at or view.created_at, view.ended_at)}")
    if view.reason:
        line.append(": ")
        line.append_text(safe(view.reason, "red"))
    return line
