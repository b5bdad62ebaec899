"""The schema of ``sqlite:///`` stores: its tables, the file's header checks, and the
migrations — plain ``sqlite3``, run on the store's connection threads (the store itself is in
``_sqlite.py``; rows and their conversions in ``_sqlite_rows.py``; the group commit's batch in
``_sqlite_batch.py``; reads in ``_sqlite_read.py`` and ``_sqlite_pages.py``).

A lifecycle database is recognised by ``PRAGMA application_id`` (:data:`APPLICATION_ID`) and
versioned by ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`), both in the file header. A file
that is not ours, or that a newer version of this library wrote, is refused before anything is
written to it. A writer migrates an older file in place, in one ``BEGIN IMMEDIATE`` transaction
(:data:`_MIGRATIONS`); a read-only store reads an older file as it is.

Versions: 1 had a ``version`` column in ``runs`` (stale: rows were upserted only when a run's
state changed); 2 dropped it.

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

import contextlib
import sqlite3
from typing import Final

from lifecycle._errors import StoreError

__all__ = [
    "APPLICATION_ID",
    "CONNECTION_PRAGMAS",
    "SCHEMA_VERSION",
    "WRITER_PRAGMAS",
    "check_header",
    "prepare",
    "rollback",
]

APPLICATION_ID: Final = 0x4C594643
"""``PRAGMA application_id`` of a lifecycle database ("LYFC")."""

SCHEMA_VERSION: Final = 2
"""``PRAGMA user_version`` this code writes. It reads every version from 1 up to this one (the
read model's columns of version 2 are all in version 1's ``runs`` table too)."""

_RUNS_TABLE: Final = """CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        dialect TEXT NOT NULL,
        operation TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        terminal INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        created_at INTEGER,
        started_at INTEGER,
        ended_at INTEGER,
        original_run_id INTEGER,
        root_run_id INTEGER,
        job_version INTEGER,
        reason TEXT
    )"""
_RUNS_INDEXES: Final = (
    "CREATE INDEX runs_name_created ON runs (name, created_at)",
    "CREATE INDEX runs_state_created ON runs (state, created_at)",
    "CREATE INDEX runs_created ON runs (created_at)",
)

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
    _RUNS_TABLE,
    *_RUNS_INDEXES,
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
    """``True`` if the file is empty (ours to create), ``False`` if it is a lifecycle database
    of a version we read (this one or an older one); raises ``StoreError`` for anything else."""
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


_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    # 1 → 2: drop runs.version. The table is made again from _RUNS_TABLE (so a migrated file has
    # exactly a new file's schema) and its rows copied: the read model stays as it was, without
    # folding the log inside the write lock (`lifecycle rebuild` refolds it when wanted).
    1: (
        *(f"DROP INDEX IF EXISTS {i.split()[2]}" for i in _RUNS_INDEXES),
        "ALTER TABLE runs RENAME TO runs_v1",
        _RUNS_TABLE,
        *_RUNS_INDEXES,
        "INSERT INTO runs (run_id, dialect, operation, name, state, outcome, terminal, warning, "
        "created_at, started_at, ended_at, original_run_id, root_run_id, job_version, reason) "
        "SELECT run_id, dialect, operation, name, state, outcome, terminal, warning, "
        "created_at, started_at, ended_at, original_run_id, root_run_id, job_version, reason "
        "FROM runs_v1",
        "DROP TABLE runs_v1",
    ),
}
"""The statements that take a database from version ``n`` to ``n + 1``."""


def prepare(conn: sqlite3.Connection, path: str, *, create: bool) -> None:
    """Check that ``conn`` holds a lifecycle database of a version we read. When ``create``
    (the writer), create the schema in an empty file, or migrate an older one to
    :data:`SCHEMA_VERSION`. Runs on the connection's thread. Raises ``StoreError``; a refused
    file is never written to (the checks only read), and creating or migrating happens inside
    ``BEGIN IMMEDIATE``, re-checked there, so two processes cannot both do it."""
    app, version, objects = _inspect(conn)
    if not _verdict(path, app, version, objects):
        if create and version < SCHEMA_VERSION:
            _migrate(conn, path)
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


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        _, version, _ = _inspect(conn)  # another process may have migrated it meanwhile
        if version < SCHEMA_VERSION:
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls some failed transactions back by itself (a full disk may); a second
    # ROLLBACK would then fail, hiding the real error.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
