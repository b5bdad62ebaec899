"""Rows of the ``sqlite:///`` store's tables and the Python values they hold: times as
integer microseconds since the epoch (UTC), ``runs`` rows as :class:`RunSummary`, ``leases``
rows as :class:`Lease`; and the statement that makes the ``runs`` table hold a rebuilt read
model. Plain ``sqlite3``, run on the store's connection threads."""

from __future__ import annotations

import datetime as _dt
import sqlite3
from collections.abc import Sequence, Set
from typing import Any, Final

import msgspec

from ._base import Lease, RunSummary

__all__ = [
    "SELECT_RUNS",
    "SUMMARY_COLUMNS",
    "UPSERT_RUN",
    "from_us",
    "json_list",
    "lease_of",
    "replace_runs",
    "summary_of_row",
    "summary_row",
    "to_us",
]

_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICROSECOND: Final = _dt.timedelta(microseconds=1)


def to_us(at: _dt.datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.UTC)
    return (at - _EPOCH) // _MICROSECOND


def from_us(us: int) -> _dt.datetime:
    """The UTC datetime of ``to_us``."""
    return _EPOCH + _dt.timedelta(microseconds=us)


def _opt_us(at: _dt.datetime | None) -> int | None:
    return None if at is None else to_us(at)


def _opt_dt(us: int | None) -> _dt.datetime | None:
    return None if us is None else from_us(us)


SUMMARY_COLUMNS: Final = (
    "run_id, dialect, operation, name, state, outcome, terminal, warning, created_at, "
    "started_at, ended_at, original_run_id, root_run_id, job_version, reason"
)


def summary_row(s: RunSummary) -> tuple[Any, ...]:
    """A ``runs`` row (in :data:`SUMMARY_COLUMNS` order)."""
    return (
        s.run_id,
        s.dialect,
        s.operation,
        s.name,
        s.state,
        s.outcome,
        int(s.terminal),
        int(s.warning),
        _opt_us(s.created_at),
        _opt_us(s.started_at),
        _opt_us(s.ended_at),
        s.original_run_id,
        s.root_run_id,
        s.job_version,
        s.reason,
    )


def summary_of_row(row: tuple[Any, ...]) -> RunSummary:
    """The ``RunSummary`` of a ``runs`` row."""
    return RunSummary(
        run_id=row[0],
        dialect=row[1],
        operation=row[2],
        name=row[3],
        state=row[4],
        outcome=row[5],
        terminal=bool(row[6]),
        warning=bool(row[7]),
        created_at=_opt_dt(row[8]),
        started_at=_opt_dt(row[9]),
        ended_at=_opt_dt(row[10]),
        original_run_id=row[11],
        root_run_id=row[12],
        job_version=row[13],
        reason=row[14],
    )


def lease_of(row: tuple[Any, ...]) -> Lease:
    """The ``Lease`` of a ``leases`` row."""
    return Lease(run_id=row[0], owner=row[1], expires_at=from_us(row[2]))


_SUMMARY_NAMES: Final = SUMMARY_COLUMNS.replace(" ", "").split(",")

UPSERT_RUN: Final = (
    f"INSERT INTO runs ({SUMMARY_COLUMNS}) VALUES ({', '.join('?' * len(_SUMMARY_NAMES))}) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_NAMES[1:])
)
SELECT_RUNS: Final = f"SELECT {SUMMARY_COLUMNS} FROM runs"


def replace_runs(
    conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], *, keep: Set[int] = frozenset()
) -> list[tuple[Any, ...]]:
    """Inside the caller's transaction: make the ``runs`` table hold exactly ``rows`` (in
    :data:`SUMMARY_COLUMNS` order) besides the rows of the run ids in ``keep``, left as they
    are (``rows`` has none of those), writing only the rows that differ — a rebuild usually
    changes few, and it holds the write lock meanwhile. Returns the rows it held, by run id."""
    before: list[tuple[Any, ...]] = conn.execute(SELECT_RUNS + " ORDER BY run_id").fetchall()
    old = {row[0]: row for row in before}
    if keep:
        rows = [row for row in rows if row[0] not in keep]
    written = {row[0] for row in rows}
    gone = [(run_id,) for run_id in old if run_id not in written and run_id not in keep]
    if gone:
        conn.executemany("DELETE FROM runs WHERE run_id = ?", gone)
    changed = [row for row in rows if old.get(row[0]) != row]
    if changed:
        conn.executemany(UPSERT_RUN, changed)
    return before


_json: Final = msgspec.json.Encoder()


def json_list(items: Sequence[Any]) -> str:
    """``items`` as a JSON array, for ``json_each(?)``: one parameter however many items."""
    return _json.encode(items).decode()
