"""The SQLite layer of ``sqlite:///`` stores: the schema, its version checks, row conversions,
and the SQL the store runs on its connections' threads — plain ``sqlite3``, no asyncio (the store
itself, its connections and its group commit, are in ``_sqlite.py``).

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

A batch of appends is written by :func:`apply_batch`: expected versions and event ids are
checked in Python against what the transaction read (and what the batch's earlier appends
wrote), so a losing append writes nothing; then every row goes in with one ``executemany`` per
table. :class:`Heads` lets a writer that is the only one skip re-reading stream versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import sqlite3
from collections.abc import Sequence, Set
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final

import msgspec

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, CorruptLog, StoreError

from ._base import Lease, RunSummary, check_expected, resolve_retry

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "APPLICATION_ID",
    "CONNECTION_PRAGMAS",
    "INSERT_EVENT",
    "SCHEMA_VERSION",
    "SELECT_ALL",
    "SELECT_BY_IDS",
    "SELECT_READ",
    "SELECT_RUNS",
    "SELECT_STREAMS",
    "SUMMARY_COLUMNS",
    "UPSERT_RUN",
    "WRITER_PRAGMAS",
    "Heads",
    "Job",
    "Prepared",
    "apply_batch",
    "check_header",
    "decode_rows",
    "from_us",
    "json_list",
    "lease_of",
    "max_position",
    "prepare",
    "records_of",
    "replace_runs",
    "rollback",
    "summary_of_row",
    "summary_row",
    "to_us",
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


# -- the SQL run on the connections' threads (plain sqlite3, no asyncio) -------------------------

SELECT_STREAMS: Final = (
    "SELECT s.name, s.id, (SELECT e.version FROM events AS e WHERE e.stream_id = s.id "
    "ORDER BY e.version DESC LIMIT 1) FROM json_each(?) AS j CROSS JOIN streams AS s "
    "ON s.name = j.value"
)
SELECT_BY_IDS: Final = (
    "SELECT e.position, e.stream_id, e.version, e.event_id, e.recorded_at, e.data "
    "FROM json_each(?) AS j CROSS JOIN events AS e ON e.event_id = j.value"
)
SELECT_READ: Final = (
    "SELECT e.position, e.stream_id, e.version, e.event_id, e.recorded_at, e.data "
    "FROM json_each(?) AS j CROSS JOIN streams AS s ON s.name = j.value "
    "CROSS JOIN events AS e ON e.stream_id = s.id WHERE e.position > ? ORDER BY e.position"
)
SELECT_ALL: Final = (
    "SELECT position, stream_id, version, event_id, recorded_at, data FROM events "
    "WHERE position > ? ORDER BY position LIMIT ?"
)
INSERT_EVENT: Final = (
    "INSERT INTO events (position, stream_id, version, event_id, recorded_at, data) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)

_json: Final = msgspec.json.Encoder()


def json_list(items: Sequence[str]) -> str:
    return _json.encode(items).decode()


Prepared = tuple[
    str, int | None, tuple[str, ...] | None, tuple[ev.Fact, ...], list[bytes],
    tuple[_dt.datetime, ...] | None,
]  # fmt: skip
"""One write, ready for the thread: stream, expected version, event ids (``None``: the thread
makes them), facts, their bytes, and per-event times (``None``: the append's)."""


class Job:
    """One queued write: an append (``writes`` set) or a run-id allocation (``writes`` None).

    ``given`` says the caller chose some event ids (so they may be a retry and are looked up):
    then ``ids`` holds every id of the append, made on the loop where the caller gave none.
    Otherwise ``ids`` is empty and the writer thread makes the ids, for the whole batch from
    one read of the system's randomness; they are fresh by construction. ``at`` is ``None``
    for "the time of the commit", read once per batch on the writer thread.
    """

    __slots__ = ("at", "future", "given", "ids", "outcome", "summaries", "taken", "writes")

    def __init__(
        self,
        writes: list[Prepared] | None,
        ids: list[str],
        given: bool,
        summaries: list[tuple[Any, ...]],
        at: _dt.datetime | None,
    ) -> None:
        self.writes = writes
        self.ids = ids
        self.given = given
        self.summaries = summaries
        self.at = at
        self.future: asyncio.Future[object] | None = None
        self.outcome: object = None
        self.taken = False


class Heads:
    """What the writer thread knows of the database between its transactions: each stream's
    id and version, the last position and the last stream id. Valid while no other connection
    has committed (``PRAGMA data_version`` is unchanged), which lets a batch skip reading them
    — the common case of one process writing its own store."""

    __slots__ = ("data_version", "pending", "position", "sid", "streams")

    LIMIT: Final = 100_000  # streams remembered before starting over

    def __init__(self) -> None:
        self.streams: dict[str, tuple[int, int]] = {}
        self.position = -1  # -1: unknown
        self.sid = -1
        self.data_version: int | None = None
        self.pending: tuple[dict[str, list[int]], int, int] | None = None

    def check(self, conn: sqlite3.Connection) -> None:
        """Inside the write transaction: forget everything if someone else wrote."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.data_version:
            self.clear()
            self.data_version = version

    def commit(self) -> None:
        """The transaction committed: what it wrote is now what the database holds."""
        if self.pending is not None:
            streams, self.position, self.sid = self.pending
            if len(self.streams) + len(streams) > self.LIMIT:
                self.streams.clear()
            self.streams.update((name, (e[0], e[1])) for name, e in streams.items())
            self.pending = None

    def clear(self) -> None:
        self.streams.clear()
        self.position = self.sid = -1
        self.pending = None


def apply_batch(
    conn: sqlite3.Connection, batch: list[Job], heads: Heads | None, path: str
) -> list[object]:
    """Check and write the jobs, inside the caller's transaction. Returns, per job, its
    records, its run id, or the ``ConcurrencyError`` that rejected it (having written
    nothing for it). Raises ``sqlite3.Error`` when SQLite fails. ``heads``, if given and
    checked in this transaction, saves reading what it knows; it learns the new heads
    (``heads.commit()`` makes them its own once the transaction commits)."""
    names: dict[str, None] = {}
    ids: list[str] = []
    fresh = 0  # facts whose ids this batch makes
    for job in batch:
        if job.writes is not None:
            for w in job.writes:
                names[w[0]] = None
                if w[2] is None:
                    fresh += len(w[3])
            if job.given:
                ids += job.ids
    # stream name → [id, version], as the database has it, then as this batch leaves it
    streams: dict[str, list[int]] = {}
    unknown = list(names)
    if heads is not None and heads.streams:
        known = heads.streams
        unknown = []
        for name in names:
            hit = known.get(name)
            if hit is None:
                unknown.append(name)
            else:
                streams[name] = [hit[0], hit[1]]
    if unknown:
        for name, sid, version in conn.execute(SELECT_STREAMS, (json_list(unknown),)):
            streams[name] = [sid, version or 0]
    # records by event id, stored or written earlier in this batch: kept only when some
    # append gave its own ids (a retry can only name ids its caller chose)
    found: dict[str, ev.Recorded] | None = None
    if ids:
        rows = conn.execute(SELECT_BY_IDS, (json_list(ids),)).fetchall()
        # not the shared name cache: this transaction may yet roll back
        found = {r.event_id: r for r in records_of(conn, rows, {}, path)}
    pool = ev.new_event_ids(fresh) if fresh else []
    taken = 0  # ids of the pool handed out
    position = heads.position if heads is not None else -1
    next_sid = heads.sid if heads is not None else -1
    run_id = -1
    now = _dt.datetime.now(_dt.UTC)  # recorded_at of the appends that did not give one
    now_us = to_us(now)
    new_streams: list[tuple[int, str]] = []
    stream_run_ids: list[int] = []
    event_rows: list[tuple[Any, ...]] = []
    summary_rows: list[tuple[Any, ...]] = []
    results: list[object] = []
    Recorded = ev.Recorded  # locals: the loops below run once per fact
    add_row = event_rows.append
    for job in batch:
        writes = job.writes
        if writes is None:
            if run_id < 0:
                row = conn.execute("SELECT value FROM counters WHERE name = 'run_id'")
                run_id = (row.fetchone() or (0,))[0]
            run_id += 1
            results.append(run_id)
            continue
        try:
            if found is not None and job.given:
                retry = resolve_retry(job.ids, [found.get(i) for i in job.ids])
                if retry is not None:
                    results.append(retry)
                    continue
            for stream, expected, *_ in writes:
                if expected is not None:
                    entry = streams.get(stream)
                    check_expected(stream, expected, 0 if entry is None else entry[1])
        except ConcurrencyError as exc:  # IdempotencyConflict included
            results.append(exc)
            continue
        if position < 0:
            position = conn.execute("SELECT MAX(position) FROM events").fetchone()[0] or 0
        records: list[ev.Recorded] = []
        add = records.append
        at, at_us = (now, now_us) if job.at is None else (job.at, to_us(job.at))
        for stream, _, given_ids, facts, blobs, times in writes:
            if not facts:
                continue  # an empty write only checks its expected version
            entry = streams.get(stream)
            if entry is None:
                if next_sid < 0:
                    next_sid = conn.execute("SELECT MAX(id) FROM streams").fetchone()[0] or 0
                next_sid += 1
                entry = streams[stream] = [next_sid, 0]
                new_streams.append((next_sid, stream))
                head = stream[4:].partition("/")[0] if stream.startswith("run-") else ""
                if head.isdigit():  # imported runs keep their ids: never hand them out
                    stream_run_ids.append(int(head))
            sid, version = entry
            wids: Sequence[str] = given_ids or pool[taken : taken + len(facts)]
            if given_ids is None:
                taken += len(facts)
            n = len(facts)
            stamps = repeat(at, n) if times is None else times
            stamps_us = repeat(at_us, n) if times is None else [to_us(t) for t in times]
            for fact, event_id, blob, stamp, stamp_us in zip(
                facts, wids, blobs, stamps, stamps_us, strict=True
            ):
                position += 1
                version += 1
                add(
                    Recorded(
                        stream=stream,
                        version=version,
                        position=position,
                        event_id=event_id,
                        recorded_at=stamp,
                        event=fact,  # type: ignore[arg-type]
                    )
                )
                add_row((position, sid, version, event_id, stamp_us, blob))
            entry[1] = version
        if found is not None:
            found.update((r.event_id, r) for r in records)
        if job.summaries:
            summary_rows += job.summaries
        results.append(records)
    if new_streams:
        conn.executemany("INSERT INTO streams (id, name) VALUES (?, ?)", new_streams)
    if event_rows:
        conn.executemany(INSERT_EVENT, event_rows)
    if summary_rows:
        conn.executemany(UPSERT_RUN, summary_rows)
    if stream_run_ids:
        if run_id < 0:
            row = conn.execute("SELECT value FROM counters WHERE name = 'run_id'")
            run_id = (row.fetchone() or (0,))[0]
        run_id = max(run_id, *stream_run_ids)
    if run_id >= 0:
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('run_id', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (run_id,),
        )
    if heads is not None:
        heads.pending = (streams, position, next_sid)
    return results


def records_of(
    conn: sqlite3.Connection, rows: list[Any], names: dict[int, str], path: str
) -> list[ev.Recorded]:
    """``Recorded`` envelopes of ``events`` rows (position, stream_id, version, event_id,
    recorded_at, data), looking stream names up in ``names`` (and filling it in). Decodes
    every fact in one msgspec call when it can."""
    if not rows:
        return []
    learn_names(conn, {row[1] for row in rows}, names)
    facts = decode_rows(rows, path)
    # the facts of one append share their time: convert each distinct one once
    times = {us: from_us(us) for us in {row[4] for row in rows}}
    Recorded = ev.Recorded
    return [
        Recorded(
            stream=names[sid],
            version=version,
            position=position,
            event_id=event_id,
            recorded_at=times[us],
            event=fact,
        )
        for (position, sid, version, event_id, us, _), fact in zip(rows, facts, strict=True)
    ]


def learn_names(conn: sqlite3.Connection, ids: set[int], names: dict[int, str]) -> None:
    """Add the names of the stream ``ids`` that ``names`` lacks (ids never change). One SQLite
    step, not one per name: a step lets go of the GIL, and getting it back from a busy event
    loop can take a switch interval (5 ms)."""
    missing = ids - names.keys()
    if missing:
        (found,) = conn.execute(_SELECT_NAMES, (_json.encode(sorted(missing)),)).fetchone()
        names.update(_names.decode(found))


_SELECT_NAMES: Final = (
    "SELECT json_group_object(s.id, s.name) FROM json_each(?) AS j "
    "CROSS JOIN streams AS s ON s.id = j.value"
)
_names: Final = msgspec.json.Decoder(dict[int, str])


def decode_rows(rows: list[Any], path: str) -> list[ev.FactType]:
    """The facts of ``events`` rows (their ``data``, column 5), through the upcasters.
    Raises ``CorruptLog`` naming the first row that cannot be read."""
    n = len(rows)
    # The blobs are msgpack facts; a msgpack array header in front makes them one array
    # that msgspec decodes in a single call (much cheaper than a call per fact).
    header = b"\xdd" + n.to_bytes(4, "big")
    try:
        facts = ev.decode_facts(header + b"".join([row[5] for row in rows]))
    except msgspec.DecodeError:
        pass  # an old shape somewhere: decode one by one, through the upcasters
    else:
        if not _upcasting(facts):
            return facts
    facts = []
    for row in rows:
        try:
            facts.append(ev.decode_fact(row[5]))
        except msgspec.DecodeError as exc:
            raise CorruptLog(
                path, row[0], f"event {row[3]} (position {row[0]}) cannot be read: {exc}"
            ) from exc
    return facts


def _upcasting(facts: list[ev.FactType]) -> bool:
    """Whether some of ``facts`` (decoded in bulk, which skips the upcasters) have a tag with
    upcasters: an old shape that still decodes must go through them all the same."""
    tags = ev._UPCASTERS  # the registry of upcasters, by tag
    return bool(tags) and any(type(fact).__name__ in tags for fact in facts)


# -- the log as columns: replay's fast path -------------------------------------------------------

SELECT_COLUMNS: Final = (
    "SELECT count(*), max(stream_id), json_group_array(position), json_group_array(stream_id), "
    "json_group_array(version), group_concat(event_id, x'00'), json_group_array(recorded_at), "
    "CAST(group_concat(data, '') AS BLOB) FROM (SELECT position, stream_id, version, event_id, "
    "recorded_at, data FROM events WHERE position > ? ORDER BY position LIMIT ?)"
)
"""The rows :data:`SELECT_ALL` reads, as one row: SQLite gathers each column of the page into
one value (JSON arrays of the numbers, the event ids joined by NUL, the msgpack blobs end to end;
the aggregates see the rows in the subquery's order). One ``sqlite3_step`` for the whole page
instead of one per row: the reading thread works without the GIL, and needs it back only a
few times a page — each time it may wait a switch interval (5 ms) for a busy event loop to
let go — to hand over a few big values rather than thousands of tuples."""

SELECT_RANGE: Final = (
    "SELECT count(*), max(stream_id), json_group_array(stream_id), json_group_array(version), "
    "group_concat(event_id, x'00'), json_group_array(recorded_at), "
    "CAST(group_concat(data, '') AS BLOB), (SELECT max(position) FROM events) "
    "FROM events WHERE position > ? AND position <= ?"
)
"""The rows whose position is in ``(?, ?]``, gathered as :data:`SELECT_COLUMNS` gathers a page
(the positions themselves left out: they are the range when they are dense, as a store makes
them), and the log's last position in the same snapshot. Replay's pages: a range of the
primary key is scanned in position order, with no subquery to feed the aggregates — a quarter
cheaper than :data:`SELECT_COLUMNS` here."""

SELECT_RANGE_ROWS: Final = (
    "SELECT position, stream_id, version, event_id, recorded_at, data FROM events "
    "WHERE position > ? AND position <= ? ORDER BY position"
)

SELECT_NAMES_AFTER: Final = "SELECT json_group_object(id, name), max(id) FROM streams WHERE id > ?"
"""The names of the streams whose id is above ``?``, as a JSON object, and the highest id: one
step, not one per name (each step lets go of the GIL, and getting it back from a busy event
loop can take a switch interval)."""

_ints: Final = msgspec.json.Decoder(list[int])


class Columns:
    """One page of the log by column: row ``i`` is fact ``facts[i]`` of the stream with id
    ``stream_ids[i]`` (named ``names[id]``), at ``positions[i]``, recorded at ``times[i]``
    (microseconds since the epoch, UTC); :meth:`record` adds its version and event id (decoded
    only when asked for: a replay needs them only for the facts that do not fit)."""

    __slots__ = ("_event_ids", "_versions", "facts", "names", "positions", "stream_ids", "times")

    def __init__(
        self,
        positions: Sequence[int],
        stream_ids: list[int],
        times: list[int],
        facts: list[ev.FactType],
        names: dict[int, str],
        *,
        versions: list[int] | str,
        event_ids: list[str] | str,
    ) -> None:
        self.positions = positions
        self.stream_ids = stream_ids
        self.times = times
        self.facts = facts
        self.names = names
        self._versions = versions  # or their JSON array
        self._event_ids = event_ids  # or joined by NUL

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def versions(self) -> list[int]:
        if isinstance(self._versions, str):
            self._versions = _ints.decode(self._versions)
        return self._versions

    @property
    def event_ids(self) -> list[str]:
        if isinstance(self._event_ids, str):
            self._event_ids = self._event_ids.split("\x00")
        return self._event_ids

    def record(self, i: int) -> ev.Recorded:
        """Row ``i`` as a ``Recorded`` envelope."""
        return ev.Recorded(
            stream=self.names[self.stream_ids[i]],
            version=self.versions[i],
            position=self.positions[i],
            event_id=self.event_ids[i],
            recorded_at=from_us(self.times[i]),
            event=self.facts[i],
        )

    def head(self, n: int) -> Columns:
        """The first ``n`` rows."""
        return Columns(
            self.positions[:n],
            self.stream_ids[:n],
            self.times[:n],
            self.facts[:n],
            self.names,
            versions=self.versions[:n],
            event_ids=self.event_ids[:n],
        )


@dataclasses.dataclass(slots=True)
class Page:
    """A page of the log as SQLite gathered it (:func:`read_page`, :func:`read_range`), not yet
    decoded: :meth:`columns` decodes it on the thread that will use the facts (objects made on
    one core and used on another cost more). ``last_stream`` is its highest stream id;
    ``positions`` the JSON array of its positions, or the range of positions it covers;
    ``head`` the log's last position when it was read (:func:`read_range` only). A ``count``
    of -1 says the page was too big to gather: read its rows one by one."""

    count: int
    last_stream: int
    positions: str | range
    stream_ids: str
    versions: str
    event_ids: str
    times: str
    data: bytes
    head: int = 0

    def columns(self, names: dict[int, str]) -> Columns | None:
        """The page as :class:`Columns`, naming streams from ``names`` (which must know them
        all, e.g. from :func:`names_after`); ``None`` when it must be read row by row instead
        (:func:`columns_of_rows`): its values do not add up (an event id holding a NUL, a
        range with gaps), a fact cannot be read in bulk (an old shape, a damaged row) or has
        upcasters."""
        count = self.count
        if count < 0:
            return None  # too big to gather
        if not count:
            return Columns([], [], [], [], names, versions=[], event_ids=[])
        if isinstance(self.positions, range):
            if len(self.positions) != count:
                return None  # positions missing from the range: which, the rows say
            positions: Sequence[int] = self.positions
        else:
            positions = _positions(self.positions, count)
        if self.event_ids.count("\x00") != count - 1:
            return None
        try:
            facts = ev.decode_facts(b"\xdd" + count.to_bytes(4, "big") + self.data)
        except msgspec.DecodeError:
            return None
        if _upcasting(facts):
            return None
        return Columns(
            positions,
            _ints.decode(self.stream_ids),
            _ints.decode(self.times),
            facts,
            names,
            versions=self.versions,
            event_ids=self.event_ids,
        )


def _positions(array: str, count: int) -> Sequence[int]:
    """The positions of a page from their JSON array: a ``range`` when they are dense (the
    usual case: a store allocates them one by one), found from the first and last alone as
    they are distinct and in order."""
    first = int(array[1 : array.find(",")] if count > 1 else array[1:-1])
    last = int(array[array.rfind(",") + 1 : -1] if count > 1 else array[1:-1])
    if last - first + 1 == count:
        return range(first, last + 1)
    return _ints.decode(array)


def read_page(conn: sqlite3.Connection, after: int, limit: int) -> Page | None:
    """The rows :data:`SELECT_ALL` reads (``limit`` -1: no limit) as one :class:`Page`: one
    statement, nothing decoded. ``None`` if a gathered value would pass SQLite's length limit
    (1 GB by default: huge facts, or no limit on a huge log): read those rows one by one."""
    try:
        row = conn.execute(SELECT_COLUMNS, (after, limit)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_TOOBIG:
            return None
        raise
    count, last, positions, stream_ids, versions, event_ids, times, data = row
    return Page(
        count, last or 0, positions, stream_ids, versions, event_ids or "", times, data or b""
    )


def read_range(conn: sqlite3.Connection, after: int, upto: int) -> Page:
    """The rows with a position in ``(after, upto]`` as one :class:`Page` (:data:`SELECT_RANGE`),
    with the log's last position. Past SQLite's length limit (see :func:`read_page`), a page
    whose ``count`` is -1: read those rows one by one."""
    try:
        row = conn.execute(SELECT_RANGE, (after, upto)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_TOOBIG:
            raise
        return Page(-1, 0, range(after + 1, upto + 1), "", "", "", "", b"", max_position(conn))
    count, last, stream_ids, versions, event_ids, times, data, head = row
    head = head or 0
    return Page(
        count,
        last or 0,
        range(after + 1, max(after, min(upto, head)) + 1),
        stream_ids,
        versions,
        event_ids or "",
        times,
        data or b"",
        head,
    )


def names_after(conn: sqlite3.Connection, after: int) -> tuple[dict[int, str], int]:
    """The names of the streams with an id above ``after``, and the highest id (``after`` if
    none): in one step (:data:`SELECT_NAMES_AFTER`), or row by row past SQLite's length limit.
    The writer gives a new stream the highest id yet, so every stream id up to the one
    returned is named once this is known."""
    try:
        found, last = conn.execute(SELECT_NAMES_AFTER, (after,)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_TOOBIG:
            raise
        names = dict(conn.execute("SELECT id, name FROM streams WHERE id > ?", (after,)))
        return names, max(names, default=after)
    return _names.decode(found), max(after, last or 0)


def columns_of_rows(
    conn: sqlite3.Connection,
    after: int,
    limit: int,
    names: dict[int, str],
    path: str,
    *,
    upto: int | None = None,
) -> Columns:
    """The rows :data:`SELECT_ALL` reads (or, given ``upto``, the rows with a position in
    ``(after, upto]``), read row by row into :class:`Columns` as :func:`records_of` reads them
    (upcasters, ``CorruptLog``)."""
    if upto is None:
        rows = conn.execute(SELECT_ALL, (after, limit)).fetchall()
    else:
        rows = conn.execute(SELECT_RANGE_ROWS, (after, upto)).fetchall()
    learn_names(conn, {row[1] for row in rows}, names)
    return Columns(
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[4] for row in rows],
        decode_rows(rows, path) if rows else [],
        names,
        versions=[row[2] for row in rows],
        event_ids=[row[3] for row in rows],
    )


def columns_of(
    conn: sqlite3.Connection, after: int, limit: int, names: dict[int, str], path: str
) -> Columns:
    """The rows ``SELECT_ALL`` reads (``limit`` -1: no limit), as :class:`Columns`, exactly as
    :func:`records_of` reads them: by :func:`read_range` when their positions are dense (the
    ``limit`` positions after ``after`` are then those rows), else :func:`read_page`, else
    row by row (:func:`columns_of_rows`)."""
    ranged = read_range(conn, after, min(after + limit, _NO_LIMIT) if limit >= 0 else _NO_LIMIT)
    page: Page | None = ranged
    if ranged.count < 0 or ranged.count != len(ranged.positions):
        page = read_page(conn, after, limit)  # gaps (or too big to gather)
    columns = None
    if page is not None:
        if page.count > 0:
            learn_names(conn, set(_ints.decode(page.stream_ids)), names)
        columns = page.columns(names)
    return columns if columns is not None else columns_of_rows(conn, after, limit, names, path)


_NO_LIMIT: Final = 2**63 - 1  # SQLite's largest integer


def records_of_columns(columns: Columns) -> list[ev.Recorded]:
    """The ``Recorded`` envelopes of :class:`Columns` (what :func:`records_of` makes of the
    same rows)."""
    if not len(columns):
        return []
    # the facts of one append share their time: convert each distinct one once
    times = {us: from_us(us) for us in set(columns.times)}
    names = columns.names
    Recorded = ev.Recorded
    return [
        Recorded(
            stream=names[sid],
            version=version,
            position=position,
            event_id=event_id,
            recorded_at=times[us],
            event=fact,
        )
        for sid, version, position, event_id, us, fact in zip(
            columns.stream_ids,
            columns.versions,
            columns.positions,
            columns.event_ids,
            columns.times,
            columns.facts,
            strict=True,
        )
    ]


def max_position(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT MAX(position) FROM events").fetchone()[0] or 0)


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls some failed transactions back by itself (a full disk may); a second
    # ROLLBACK would then fail, hiding the real error.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
