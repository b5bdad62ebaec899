"""The group commit's batch of the ``sqlite:///`` store: :class:`Job` (one queued append or
run-id allocation), :class:`Heads` (what the writer thread knows between its transactions) and
:func:`apply_batch`, which checks and writes a batch inside the caller's transaction — plain
``sqlite3``, run on the writer thread (the queue and the thread are in ``_sqlite.py``).

Expected versions and event ids are checked in Python against what the transaction read (and
what the batch's earlier appends wrote), so a losing append writes nothing; then every row goes
in with one ``executemany`` per table. :class:`Heads` lets a writer that is the only one skip
re-reading stream versions.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError

from ._base import check_expected, resolve_retry
from ._sqlite_read import records_of
from ._sqlite_rows import UPSERT_RUN, json_list, to_us

if TYPE_CHECKING:
    import asyncio

__all__ = ["INSERT_EVENT", "Heads", "Job", "Prepared", "apply_batch"]

SELECT_STREAMS: Final = (
    "SELECT s.name, s.id, (SELECT e.version FROM events AS e WHERE e.stream_id = s.id "
    "ORDER BY e.version DESC LIMIT 1) FROM json_each(?) AS j CROSS JOIN streams AS s "
    "ON s.name = j.value"
)
SELECT_BY_IDS: Final = (
    "SELECT e.position, e.stream_id, e.version, e.event_id, e.recorded_at, e.data "
    "FROM json_each(?) AS j CROSS JOIN events AS e ON e.event_id = j.value"
)
INSERT_EVENT: Final = (
    "INSERT INTO events (position, stream_id, version, event_id, recorded_at, data) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


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
