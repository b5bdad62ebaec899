"""``lifecycle rebuild``: recompute the ``runs`` read model from the event log."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ._base import EXIT_FAILED, open_runs, run_async, settings
from ._render import console, print_json, safe

if TYPE_CHECKING:
    from lifecycle._stores._rebuild import RebuildReport

__all__ = ["rebuild"]

_IDS_SHOWN = 20


@click.command(short_help="Recompute the runs read model from the event log.")
@click.option("--no-progress", is_flag=True, help="Do not show progress while the log is read.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rebuild(no_progress: bool, as_json: bool) -> None:
    """Fold the store's whole event log again and replace the runs read model — the table that
    `job ls`, `job runs` and the SDK's runs() list — with the result; report the runs rebuilt,
    the records read, the rows that were added, changed or removed, and the time taken.

    Safe while other processes write: the last records are read and the table is replaced in
    one write transaction, so no append is lost from it.

    A run whose dialect is not registered in this process (a user dialect: the programs that
    write its runs register it) cannot be folded here: its row is left exactly as it was, and
    the run is reported as skipped.

    Exit 0 when the whole read model was rebuilt: every run folds to its end. Exit 1 when it
    could not be, wholly: a run's log does not fold under its dialect (its row is then its
    view just before that fact, and the fact is reported), or a run was skipped (the rest is
    rebuilt all the same); or when the store cannot be opened or written (nothing changed).
    """
    from lifecycle._stores._rebuild import rebuild_summaries

    cfg = settings()
    as_json = as_json or cfg.json
    quiet = no_progress or as_json

    async def go(progress: Callable[[int, int | None], None] | None) -> RebuildReport:
        async with open_runs(cfg, write=True) as runs:
            return await rebuild_summaries(runs.store, progress=progress)

    with _progress(quiet) as progress:
        report = run_async(go, progress)
    if as_json:
        print_json(report)
    else:
        _render(report)
    if not report.complete:
        raise click.exceptions.Exit(EXIT_FAILED)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A Rich progress bar on stderr (a terminal only; gone when done), fed ``(position,
    head)``; ``None`` when quiet or not on a terminal."""
    err = console(stderr=True)
    if quiet or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "reading the log",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("rebuild", total=None)

        def update(position: int, head: int | None) -> None:
            bar.update(task, completed=position, total=head)

        yield update


def _render(report: RebuildReport) -> None:
    from functools import partial

    from rich.text import Text

    # one line per line of the report, however narrow the terminal or long the list of ids:
    # a terminal wraps them by itself, and a pipe or a script gets them whole
    out = partial(console().print, soft_wrap=True)
    out(safe(f"rebuilt the read model of {report.store}", "bold"))
    out(
        safe(
            f"  {report.runs} runs from {report.records} records (up to position "
            f"{report.position}) in {report.seconds:.2f}s"
        )
    )
    rows = Text("  rows: ")
    rows.append(f"{len(report.added)} added", style="green" if report.added else "")
    rows.append(", ")
    rows.append(f"{len(report.changed)} changed", style="yellow" if report.changed else "")
    rows.append(", ")
    rows.append(f"{len(report.removed)} removed", style="red" if report.removed else "")
    rows.append(f", {report.unchanged} unchanged")
    out(rows)
    for label, ids in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        if ids:
            out(safe(f"  {label}: {_ids(ids)}", "dim"))
    if report.ignored:
        records = f"{report.ignored} record{'s' if report.ignored != 1 else ''}"
        out(safe(f"  {records} of streams that are not runs skipped", "dim"))
    if report.diverged:
        count = len(report.diverged)
        head = Text(f"{count} run{'s' if count != 1 else ''} did not fold", style="bold red")
        head.append(" (each row is the run as of just before the fact):", style="")
        out(head)
        rowless = set(report.rowless)
        for d in report.diverged:
            line = Text("  ✗ ", style="bold red")
            line.append_text(safe(str(d)))
            if d.run_id in rowless:
                line.append(" (no row: its first fact is not Requested)", style="dim")
            out(line)
    if report.skipped:
        count = len(report.skipped)
        head = Text(f"{count} run{'s' if count != 1 else ''} skipped", style="bold yellow")
        head.append(" (dialect not registered in this process; rows left as they were):", style="")
        out(head)
        by_dialect: dict[str, list[int]] = {}
        for s in report.skipped:
            by_dialect.setdefault(s.dialect, []).append(s.run_id)
        for dialect, ids in sorted(by_dialect.items()):
            line = Text("  ! ", style="bold yellow")
            line.append_text(safe(f"{dialect}: {_ids(ids)}"))
            out(line)


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, ids[:_IDS_SHOWN]))
    return shown + (f" … ({len(ids)} in all)" if len(ids) > _IDS_SHOWN else "")
