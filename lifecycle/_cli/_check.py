"""``lifecycle check``: is the store file damaged?"""

from __future__ import annotations

import click

from ._base import CliError, default_store_url, normalise_store_url, settings, sqlite_path
from ._render import console, print_json, safe

__all__ = ["check"]


@click.command(short_help="Check the store file for damage.")
@click.option(
    "--full", is_flag=True, help="SQLite's integrity_check instead of quick_check (slower)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(full: bool, as_json: bool) -> None:
    """Check the SQLite store file: SQLite's quick_check of its pages (integrity_check with
    --full), then the event log itself — every fact decodes, positions run 1, 2, … without a
    gap, each stream's versions run 1, 2, …. It only reads.

    Exit 0 when the file is whole; 1 when it is damaged (every problem is listed, up to 20),
    or cannot be opened. A damaged store can still be read up to the damage: `lifecycle export
    --after N` takes the log after a position.
    """
    from lifecycle._stores._sqlite_check import check_file

    cfg = settings()
    store = cfg.store if isinstance(cfg.store, str) else None
    url = normalise_store_url(store) if store else default_store_url()
    path = sqlite_path(url)
    if path is None:
        raise CliError(f"{url}: only a sqlite:/// store has a file to check")
    if not path.exists():
        raise CliError(f"no store at {path}; pass --store URL or set LIFECYCLE_STORE")
    report = check_file(str(path), full=full)
    if as_json or cfg.json:
        print_json(
            {
                "path": report.path,
                "ok": report.ok,
                "events": report.events,
                "streams": report.streams,
                "problems": report.problems,
            }
        )
    else:
        out = console()
        for problem in report.problems:
            out.print(safe(problem))
        if report.ok:
            out.print(
                safe(f"{path}: ok ({report.events} events, {report.streams} streams checked)")
            )
    if not report.ok:
        raise CliError(
            f"{path}: the store file is damaged ({len(report.problems)} problem(s) above)"
        )
