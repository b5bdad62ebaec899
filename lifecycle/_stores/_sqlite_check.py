"""Checking a ``sqlite:///`` store file for damage (``lifecycle check``): SQLite's own check of
its pages, then a scan of the log at its level — every row decodes, positions run 1, 2, … with
no gap, each stream's versions run 1, 2, … in position order, every stream id is named. Plain
``sqlite3`` on a read-only connection of its own; it never writes.

Reads report a damaged file too (``CorruptLog``), but only where they look; this looks
everywhere, and says everything it finds (up to :data:`LIMIT` problems).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import urllib.parse
from contextlib import closing
from typing import Final

from lifecycle._errors import CorruptLog

from ._sqlite_read import CHECK_HINT, DAMAGED, SELECT_ALL, check_rows, decode_rows, is_damage
from ._sqlite_schema import prepare

__all__ = ["LIMIT", "Check", "check_file"]

LIMIT: Final = 20
"""Problems reported at most (a damaged page yields many)."""

_PAGE: Final = 5000


@dataclasses.dataclass
class Check:
    """What :func:`check_file` found: ``problems`` empty means the file is whole."""

    path: str
    events: int = 0
    streams: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(path: str, *, full: bool = False) -> Check:
    """Check the store file at ``path``: ``PRAGMA quick_check`` (``integrity_check`` when
    ``full``: it also compares every index with its table, slower), then the log scan. Raises
    ``StoreError`` for a file that is not a lifecycle store (or is missing)."""
    check = Check(path)
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as conn:
        try:
            prepare(conn, path, create=False)
            pragma = "integrity_check" if full else "quick_check"
            found = [row[0] for row in conn.execute(f"PRAGMA {pragma}({LIMIT})")]
            if found != ["ok"]:
                check.problems += [
                    f"SQLite {pragma}: {line}" for row in found for line in row.splitlines()
                ]
            _scan(conn, check)
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise
            check.problems.append(f"SQLite cannot read the file: {exc}")
    del check.problems[LIMIT:]
    return check


def _scan(conn: sqlite3.Connection, check: Check) -> None:
    names = dict(conn.execute("SELECT id, name FROM streams"))
    check.streams = len(names)
    versions: dict[int, int] = {}
    after = 0
    while len(check.problems) < LIMIT:
        rows = conn.execute(SELECT_ALL, (after, _PAGE)).fetchall()
        if not rows:
            break
        try:
            check_rows(rows, check.path, first=after + 1)
        except CorruptLog as exc:
            check.problems.append(_reason(exc))
            after = _skip(rows, after)
            continue
        for position, sid, version, *_ in rows:
            if sid not in names:
                check.problems.append(f"position {position}: stream id {sid} has no name")
            if version != versions.get(sid, 0) + 1:
                check.problems.append(
                    f"position {position}: {names.get(sid, sid)!r} has version {version} "
                    f"after {versions.get(sid, 0)}"
                )
            versions[sid] = version
        try:
            decode_rows(rows, check.path)
        except CorruptLog as exc:
            check.problems.append(_reason(exc))
        check.events += len(rows)
        after = rows[-1][0]
    head = conn.execute("SELECT MAX(position) FROM events").fetchone()[0] or 0
    if after < head and len(check.problems) < LIMIT:
        check.problems.append(f"positions {after + 1}-{head} cannot be read")


def _skip(rows: list[tuple[object, ...]], after: int) -> int:
    """Where to go on after a page with a damaged row: past its last readable position."""
    last = rows[-1][0]
    return last if isinstance(last, int) and last > after else after + len(rows)


def _reason(exc: CorruptLog) -> str:
    return exc.why.removeprefix(f"{DAMAGED}: ").removesuffix(CHECK_HINT)
