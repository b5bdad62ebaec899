"""``lifecycle export`` and ``lifecycle replay``: event logs out of a store, and views back from
them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._base import (
    CliError,
    Settings,
    default_store_url,
    normalise_store_url,
    run_async,
    settings,
    sqlite_path,
)
from ._render import badge, console, fmt_end, fmt_time, print_json, run_id_cell, safe

if TYPE_CHECKING:
    from rich.text import Text

    from lifecycle._replay import ReplayReport
    from lifecycle._stores import RunStore

__all__ = ["export", "replay"]


def _source(cfg: Settings) -> str | RunStore:
    """The configured store, as ``lifecycle._replay`` takes it (a URL, or a store object)."""
    if cfg.store is not None and not isinstance(cfg.store, str):
        return cfg.store
    url = normalise_store_url(cfg.store) if cfg.store else default_store_url()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise CliError(f"no store at {path}; pass --store URL or set LIFECYCLE_STORE")
    return url


@click.command(short_help="The event log as JSON Lines.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write to FILE (atomically: the whole log or nothing) instead of standard output.",
)
@click.option(
    "--after",
    metavar="POSITION",
    type=click.IntRange(min=0),
    default=0,
    help="Only records after this global position (an incremental export).",
)
def export(output: str | None, after: int) -> None:
    """Export the store's event log as JSON Lines: one Recorded envelope (stream, version,
    position, event id, time, fact) a line, in global order. `lifecycle replay` reads it back."""
    from lifecycle._replay import export as export_log

    cfg = settings()
    source = _source(cfg)
    if output not in (None, "-"):
        folder = Path(output).expanduser().parent
        if not folder.is_dir():
            raise CliError(f"cannot write {output}: the folder {folder} does not exist")
    try:
        count = run_async(lambda: export_log(source, output, after=after))
    except OSError as exc:  # the target, not the temporary file written first
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if output not in (None, "-"):
        console(stderr=True).print(safe(f"exported {count} records to {output}"))


@click.command(short_help="Views from a log; its first invalid facts.")
@click.argument("file", metavar="FILE")
@click.option("--dialect", "-d", help="View every run under this dialect instead of its own.")
@click.option(
    "--at",
    type=click.IntRange(min=0),
    metavar="POSITION",
    help="Time travel: fold only records up to this global position (for a file of bare facts, "
    "a line number).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay(file: str, dialect: str | None, at: int | None, as_json: bool) -> None:
    """Rebuild every run's view from the JSON Lines log FILE (`-` for standard input, or a store
    URL) and report the first fact of each run that its dialect does not accept.

    Exit 0 when every run folds to the end; 1 when a run diverges, or when a line cannot be read
    (the error names the file and line).
    """
    from lifecycle._dialects import dialect as find_dialect
    from lifecycle._replay import replay as replay_log

    if dialect is not None:
        find_dialect(dialect)  # an unknown name fails before the file is read
    store = _store_url_of(file)
    if store is not None:
        report = run_async(_replay_store, store, dialect, at)
    else:
        report = replay_log(file, dialect, at)
    if as_json or settings().json:
        print_json(report)
    else:
        _render(report)
    if report.divergences:
        raise click.exceptions.Exit(1)


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def _store_url_of(file: str) -> str | None:
    """The store ``FILE`` names — a store URL, or a path to a SQLite file (told by its header,
    as ``--store`` takes plain paths) — or ``None`` for a JSON Lines file or ``-``. Raises
    ``CliError`` for a path that is missing or not a file."""
    if file == "-":
        return None
    if "://" in file or file.startswith(("memory:", "sqlite:")):
        url = normalise_store_url(file)
        path = sqlite_path(url)
        if path is not None and not path.is_file():
            raise CliError(f"no store at {path}")
        return url
    path = Path(file).expanduser()
    if path.is_dir():
        raise CliError(
            f"{file} is a directory: replay reads a JSON Lines file (`lifecycle export` "
            "writes one), `-` for standard input, a store URL, or a SQLite store's file"
        )
    if not path.exists():
        raise CliError(f"{file} does not exist")
    if not path.is_file():
        raise CliError(f"{file} is not a file")
    with path.open("rb") as head:
        if head.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
            return normalise_store_url(str(path))
    return None


async def _replay_store(url: str, dialect: str | None, at: int | None) -> ReplayReport:
    """Replay a store opened read-only: replaying never writes, nor migrates a store."""
    from lifecycle._replay import areplay
    from lifecycle._stores import open_store

    options = {"readonly": True} if url.startswith("sqlite:") else {}
    async with open_store(url, **options) as store:
        return await areplay(store, dialect, at)


def _render(report: ReplayReport) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    if report.views:
        table = Table(box=None, pad_edge=False, header_style="bold")
        narrow = out.width < 140  # then shorter times and no TASKS, so the reason has room
        longest = max(len(v.name or "-") for v in report.views.values())
        table.add_column("RUN", no_wrap=True, min_width=3)
        table.add_column("JOB", min_width=min(longest, 24), overflow="fold")
        kind = "OPERATION" if report.dialect else "DIALECT"  # one dialect: said in the summary
        columns = (
            (kind, "STATE", "CREATED", "ENDED")
            if narrow
            else (kind, "STATE", "TASKS", "CREATED", "ENDED")
        )
        for column in columns:
            table.add_column(column, no_wrap=True, min_width=len(column))
        reasons = any(v.reason for v in report.views.values())
        if reasons:
            table.add_column("REASON", overflow="fold", min_width=12, ratio=1)
        diverged = {d.run_id for d in report.divergences}
        for run_id in sorted(report.views):
            v = report.views[run_id]
            run = run_id_cell(v.run_id, v.warning)
            if run_id in diverged:
                run.append(" ✗", style="bold red")  # listed under the table
            cells: list[Text | str] = [
                run,
                safe(v.name or "-"),
                safe(v.operation if report.dialect else f"{v.dialect} {v.operation}".strip()),
                badge(v.state, v.outcome),
            ]
            if not narrow:
                cells.append(str(len(v.containers)) if v.containers else "-")
            cells += [fmt_time(v.created_at, short=narrow), fmt_end(v.created_at, v.ended_at)]
            if reasons:
                cells.append(safe(v.reason or ""))
            table.add_row(*cells)
        out.print(table)
        out.print()
    head = str(report).splitlines()[0]
    out.print(safe(head, "bold"))
    for d in report.divergences:
        line = Text()
        line.append("  ✗ ", style="bold red")
        line.append_text(safe(str(d)))
        out.print(line)
