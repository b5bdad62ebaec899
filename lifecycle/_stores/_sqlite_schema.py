"""The SQLite schema of ``sqlite:///`` stores: tables, version checks, and row conversions.

A lifecycle database is recognised by ``PRAGMA application_id`` (:data:`APPLICATION_ID`) and
versioned by ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`), both in the file header. A file
that is not ours, or that a newer version of this library wrote, is refused before anything is
written to it.

Layout, and why:

- ``streams`` maps each stream name to an integer id; ``events`` references the integer. Text
  keys on the 1M-row table made appends 3–5× slower.
- ``events.position`` is the ``INTEGER PRIMARY KEY`` (the rowid): the global order. SQLite has a
  single writer and the store allocates ``MAX(position) + 1`` inside the write transaction, so
  positions follow commit order and no reader ever skips one.
- ``UNIQUE (stream_id, version)`` backs dense per-stream versions; every SQLite index also holds
  the rowid, so "this stream after position p" is answered from the index alone.
- ``UNIQUE (event_id)`` is the idempotency key; ids are time-ordered by default, so the index
  grows at its right edge.
- ``runs`` is the read model, upserted in the same transaction as the facts; its indexes serve
  ``list_runs(name=…, state=…, start_time=…, end_time=…)``, newest first.

Times are stored as integer microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from typing import Any, Final

from lifecycle._errors import StoreError

from ._base import Lease, RunSummary

__all__ = [
    "APPLICATION_ID",
    "CONNECTION_PRAGMAS",
    "SCHEMA_VERSION",
    "SUMMARY_COLUMNS",
    "UPSERT_RUN",
    "WRITER_PRAGMAS",
    "check_header",
    "from_us",
    "lease_of",
    "prepare",
    "summary_of_row",
    "summary_row",
    "to_us",
]

APPLICATION_ID: Final = 0x4C594643
"""``PRAGMA application_id`` of a lifecycle database ("LYFC")."""

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` this code writes and reads."""

_TABLES: Final = (
    """CREATE TABLE streams (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE events (
        position INTEGER PRIMARY KEY,
        stream_id INTEGER NOT NULL,
        version INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version)",
    "CREATE UNIQUE INDEX events_event_id ON events (event_id)",
    """CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        dialect TEXT NOT NULL,
        operation TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        terminal INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER,
        started_at INTEGER,
        ended_at INTEGER,
        original_run_id INTEGER,
        root_run_id INTEGER,
        job_version INTEGER,
        reason TEXT
    )""",
    "CREATE INDEX runs_name_created ON runs (name, created_at)",
    "CREATE INDEX runs_state_created ON runs (state, created_at)",
    "CREATE INDEX runs_created ON runs (created_at)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE blobs (key TEXT PRIMARY KEY, data BLOB NOT NULL)",
    """CREATE TABLE leases (
        run_id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    )""",
)

CONNECTION_PRAGMAS: Final = ("PRAGMA cache_size = -32768",)  # 32 MiB of pages per connection
"""Set on every connection the store opens (besides ``busy_timeout``)."""

WRITER_PRAGMAS: Final = (
    # Checkpoint every 10,000 WAL frames (~40 MiB), not SQLite's 1,000: concurrent runs dirty
    # one index page per stream per commit, and a longer interval copies each hot page into the
    # database once per checkpoint instead of ten times (1.3-1.6x the append rate here).
    "PRAGMA wal_autocheckpoint = 10000",
)
"""Set on the writer connection, after ``synchronous``."""

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def check_header(path: str) -> None:
    """Refuse a file that exists, is not empty, and is not a SQLite database — before SQLite
    opens it (opening is harmless, but this gives the clearer message)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path!r}: {exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise StoreError(
            f"{path!r} is not a SQLite database, so not a lifecycle store; it was left untouched. "
            "Point the store at a new file or an existing lifecycle database."
        )


def _inspect(conn: sqlite3.Connection) -> tuple[int, int, int]:
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return int(app), int(version), int(objects)


def _verdict(path: str, app: int, version: int, objects: int) -> bool:
    """``True`` if the file is empty (ours to create), ``False`` if it is a current lifecycle
    database; raises ``StoreError`` for anything else."""
    if app == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path!r} has lifecycle schema version {version}, newer than this library's "
                f"{SCHEMA_VERSION}; it was left untouched. Upgrade lifecycle to open it."
            )
        if version < 1:
            raise StoreError(f"{path!r} has no lifecycle schema version; it was left untouched.")
        return False
    if app == 0 and version == 0 and objects == 0:
        return True
    raise StoreError(
        f"{path!r} is a SQLite database but not a lifecycle store (application_id={app:#x}, "
        f"{objects} schema objects); it was left untouched. Use a new file for the store."
    )


def prepare(conn: sqlite3.Connection, path: str, *, create: bool) -> None:
    """Check that ``conn`` holds a lifecycle database of a version we read, creating the schema
    in an empty file when ``create``. Runs on the connection's thread. Raises ``StoreError``;
    a refused file is never written to (the checks only read, and creation happens only in an
    empty file, inside ``BEGIN IMMEDIATE`` so two processes cannot both create it)."""
    if not _verdict(path, *_inspect(conn)):
        return
    if not create:
        raise StoreError(f"{path!r} is empty: there is no lifecycle store to open read-only")
    conn.execute("PRAGMA journal_mode=WAL")  # persistent, in the header; not allowed in a txn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _verdict(path, *_inspect(conn)):  # another process may have created it meanwhile
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# -- conversions ----------------------------------------------------------------------------------

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
    "run_id, dialect, operation, name, state, outcome, terminal, warning, version, created_at, "
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
        s.version,
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
        version=row[8],
        created_at=_opt_dt(row[9]),
        started_at=_opt_dt(row[10]),
        ended_at=_opt_dt(row[11]),
        original_run_id=row[12],
        root_run_id=row[13],
        job_version=row[14],
        reason=row[15],
    )


def lease_of(row: tuple[Any, ...]) -> Lease:
    """The ``Lease`` of a ``leases`` row."""
    return Lease(run_id=row[0], owner=row[1], expires_at=from_us(row[2]))


UPSERT_RUN: Final = (
    f"INSERT INTO runs ({SUMMARY_COLUMNS}) VALUES ({', '.join('?' * 16)}) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SUMMARY_COLUMNS.replace(" ", "").split(",")[1:])
)
