"""``postgresql://user@host:port/db``: one log shared by processes on many hosts (issue 14).

Through asyncpg; asyncio only (like ``sqlite://``). Every append is one transaction that takes
``LOCK TABLE lifecycle_events IN EXCLUSIVE MODE`` (readers are not blocked), reads the head and
the streams' versions under the lock, inserts positions head+1..head+n, upserts the read model,
sends one ``pg_notify`` and commits — so positions follow commit order and a reader that resumes
after position p never skips an event, whatever the number of writers (a plain ``bigserial`` does
not give that: a value is taken at INSERT, the row appears at COMMIT; DESIGN §6, §14). ``wait``
listens for the notification, with a fallback poll (a notification is lost while the listening
connection reconnects).

Options, as URL query parameters or keyword arguments: ``pool_size`` (default 10),
``statement_cache_size`` (asyncpg's, default 100; 0 behind pgbouncer), ``timeout`` (seconds to
connect, default 30), ``poll`` (the fallback poll of ``wait``, default 1 s).

Group commit: concurrent appends of one process share a transaction (the first to arrive
commits the queue, batch after batch), so the lock is taken once per batch; an append that fails
its own checks fails alone.

Blobs (results) up to ``LARGE_BLOB`` bytes are ``bytea``; larger ones are large objects, written
and read in ``BLOB_CHUNK`` pieces: measured on this machine, a 64 MiB ``bytea`` took 1.4 s to
write and 0.25 s to read, a large object 0.8 s and 0.1 s; at 256 MiB 6.4 s against 2.5 s to
write — and a ``bytea`` cannot pass 1 GB at all. At 16 MiB the two cost the same.

Schema versions: a database records the version of the tables it has (``lifecycle_meta``). An
older one is migrated in place when the store opens (``MIGRATIONS``, in one transaction, under
the advisory lock that serialises opening); a newer or unknown one is refused, nothing changed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Final

import anyio
import anyio.lowlevel
import msgspec
import sniffio

from lifecycle import events as ev
from lifecycle._errors import (
    ConcurrencyError,
    CorruptLog,
    IdempotencyConflict,
    LifecycleError,
    StoreError,
)

from ._base import (
    Lease,
    RebuildProgress,
    RunStore,
    RunSummary,
    SummaryFold,
    Write,
    as_utc,
    check_expected,
    fold_pages,
    resolve_retry,
    summary_in_utc,
)

__all__ = ["PostgresStore"]

SCHEMA_VERSION: Final = "2"
"""The tables this version reads and writes (1: the first; 2: large objects for blobs)."""

MIGRATIONS: Final[dict[str, tuple[str, str]]] = {
    # from version: (to version, the SQL that takes a database there, in place)
    "1": (
        "2",
        """
        ALTER TABLE lifecycle_blobs ALTER COLUMN data DROP NOT NULL;
        ALTER TABLE lifecycle_blobs ADD COLUMN lo oid;
        ALTER TABLE lifecycle_blobs ADD COLUMN size bigint;
        UPDATE lifecycle_blobs SET size = length(data);
        ALTER TABLE lifecycle_blobs ALTER COLUMN size SET NOT NULL;
        """,
    ),
}

LARGE_BLOB: Final = 16 * 2**20
"""Blobs larger than this are large objects (see the module docstring)."""

BLOB_CHUNK: Final = 4 * 2**20
"""Bytes of a large object per round trip."""
CHANNEL: Final = "lifecycle_events"
RELISTEN: Final = 0.5
"""Seconds between ``wait``'s polls while its listening connection is lost."""
_OPTIONS: Final = {
    "pool_size": int,
    "statement_cache_size": int,
    "timeout": float,
    "poll": float,
    "poll_interval": float,  # the SQLite store's name for the same thing
}

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS lifecycle_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS lifecycle_events (
    position bigint PRIMARY KEY,
    stream text NOT NULL,
    version integer NOT NULL,
    event_id text NOT NULL UNIQUE,
    recorded_at timestamptz NOT NULL,
    data bytea NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS lifecycle_runs (
    run_id bigint PRIMARY KEY,
    name text NOT NULL,
    dialect text NOT NULL,
    state text NOT NULL,
    created_at timestamptz,
    row bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS lifecycle_runs_name ON lifecycle_runs (name, run_id DESC);
CREATE INDEX IF NOT EXISTS lifecycle_runs_created ON lifecycle_runs (created_at);
CREATE TABLE IF NOT EXISTS lifecycle_blobs (
    key text PRIMARY KEY, data bytea, lo oid, size bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS lifecycle_leases (
    run_id bigint PRIMARY KEY, owner text NOT NULL, expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS lifecycle_counters (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO lifecycle_counters VALUES ('run_ids', 0) ON CONFLICT DO NOTHING;
"""

_row_encoder: Final = msgspec.msgpack.Encoder()
_row_decoder: Final = msgspec.msgpack.Decoder(RunSummary)


def _split(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The DSN for asyncpg (our options taken out of its query) and our options."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = dict(options)
    rest = []
    for key, value in query:
        if key in _OPTIONS:
            try:
                ours[key] = _OPTIONS[key](value)
            except ValueError:
                raise StoreError(
                    f"{url}: {key}={value!r} is not a {_OPTIONS[key].__name__}"
                ) from None
        else:
            rest.append((key, value))
    unknown = set(ours) - set(_OPTIONS)
    if unknown:
        raise StoreError(
            f"unknown PostgreSQL store options {sorted(unknown)}: use {sorted(_OPTIONS)}"
        )
    dsn = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    return dsn, ours


class PostgresStore(RunStore):
    """A store in a PostgreSQL database (see the module docstring)."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self._dsn, opts = _split(url, options)
        self.pool_size = int(opts.get("pool_size", 10))
        self.statement_cache_size = int(opts.get("statement_cache_size", 100))
        self.timeout = float(opts.get("timeout", 30.0))
        self.poll = float(opts.get("poll", opts.get("poll_interval", 1.0)))
        self._pool: Any = None
        self._listener: Any = None
        self.migrated_from: str | None = None  # the schema version found and migrated
        self._queue: list[_Pending] = []
        self._committing = False
        self.transactions = 0  # append transactions committed or tried: group commit at work
        self._notified: asyncio.Event | None = None

    # -- opening and closing ----------------------------------------------------------------

    async def __aenter__(self) -> PostgresStore:
        if self._pool is not None:
            return self
        if sniffio.current_async_library() != "asyncio":
            raise StoreError(f"{self.url}: the PostgreSQL store runs on asyncio only (asyncpg)")
        import asyncpg  # noqa: PLC0415  (the driver loads only when a PostgreSQL store opens)

        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self.pool_size,
                statement_cache_size=self.statement_cache_size,
                timeout=self.timeout,
            )
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7201)")  # one creator at a time
                await conn.execute(_SCHEMA)
                found = await conn.fetchval("SELECT value FROM lifecycle_meta WHERE key = 'schema'")
                if found is None:
                    await conn.execute(
                        "INSERT INTO lifecycle_meta VALUES ('schema', $1)", SCHEMA_VERSION
                    )
                else:
                    await self._migrate(conn, found)
            self._listener = await asyncpg.connect(self._dsn, timeout=self.timeout)
            await self._listener.add_listener(CHANNEL, self._on_notify)
            self._listener.add_termination_listener(self._on_notify)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, LifecycleError) or not isinstance(exc, Exception):
                raise
            raise StoreError(f"{self.url}: opening the store failed: {exc}") from exc
        return self

    async def _migrate(self, conn: Any, found: str) -> None:
        """Take a database of schema ``found`` to ``SCHEMA_VERSION`` in place (inside the
        opening transaction: all the steps or none), or refuse one this version cannot read."""
        version = found
        while version != SCHEMA_VERSION:
            if version not in MIGRATIONS:
                raise StoreError(
                    f"{self.url}: written by another version of lifecycle (schema {found}, "
                    f"this one reads {SCHEMA_VERSION}); nothing was changed"
                )
            version, sql = MIGRATIONS[version]
            await conn.execute(sql)
        if version != found:
            await conn.execute("UPDATE lifecycle_meta SET value = $1 WHERE key = 'schema'", version)
            self.migrated_from = found

    async def aclose(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        with anyio.CancelScope(shield=True):
            if listener is not None:
                with suppress(Exception):
                    await listener.close()
            if pool is not None:
                await pool.close()

    def _on_notify(self, *_: Any) -> None:
        event, self._notified = self._notified, None
        if event is not None:
            event.set()

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError(f"{self.url}: the store is not open (use `async with`)")
        import asyncpg  # noqa: PLC0415

        try:
            async with self._pool.acquire() as conn:
                yield conn
        except asyncpg.UniqueViolationError:
            raise  # an append's stored event id: the group commit handles it
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,  # a connection broken mid-operation (server gone)
            OSError,
        ) as exc:
            raise StoreError(f"{self.url}: {what} failed: {exc}") from exc

    # -- the event log ------------------------------------------------------------------------

    async def append(
        self,
        writes: Sequence[Write],
        *,
        summaries: Sequence[RunSummary] = (),
        at: _dt.datetime | None = None,
    ) -> list[ev.Recorded]:
        now = as_utc(at) if at is not None else _dt.datetime.now(_dt.UTC)
        pending = _Pending(
            writes=writes,
            ids=[w.ids() for w in writes],
            times=[
                w.times(now) if w.recorded_at is None else tuple(map(as_utc, w.times(now)))
                for w in writes
            ],
            data=[[ev.encode_fact(f) for f in w.events] for w in writes],
            summaries=summaries,
            done=asyncio.get_running_loop().create_future(),
        )
        self._queue.append(pending)
        if not self._committing:
            # Group commit: this append commits every append queued until the queue is empty,
            # one transaction (and one lock) per batch; the others wait for their result.
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):  # the followers depend on it
                    while self._queue:
                        size = -1
                        while len(self._queue) != size:  # the appenders just answered come
                            size = len(self._queue)  # back with their next appends: wait
                            await asyncio.sleep(0)  # while the batch grows
                        batch, self._queue = self._queue, []
                        await self._commit(batch)
            finally:
                self._committing = False
        return await pending.done  # cancelled: the append may still commit, as any could

    async def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for ``batch``: each append checked in order against the log as the
        appends before it in the batch leave it; one that fails gets its own error, the others
        are written. A failure of the transaction itself fails them all (nothing written).

        Event ids are fresh in all but retries, so they are not looked up first: the insert's
        unique index finds a stored one, and only then is the batch redone with the lookup."""
        import asyncpg  # noqa: PLC0415

        try:
            await self._transaction(batch, look_up_ids=False)
        except (asyncpg.UniqueViolationError, _Recheck):
            await self._transaction(batch, look_up_ids=True)

    async def _transaction(self, batch: list[_Pending], *, look_up_ids: bool) -> None:
        import asyncpg  # noqa: PLC0415

        results: list[list[ev.Recorded] | BaseException] = []
        self.transactions += 1
        try:
            async with self._conn("append") as conn, conn.transaction():
                await conn.execute("LOCK TABLE lifecycle_events IN EXCLUSIVE MODE")
                flat = [i for p in batch for group in p.ids for i in group]
                by_id: dict[str, ev.Recorded] = {}
                if flat and look_up_ids:
                    stored = await conn.fetch(_BY_ID, flat)
                    by_id = {r["event_id"]: _record(r) for r in stored}
                names = list(dict.fromkeys(w.stream for p in batch for w in p.writes))
                versions: dict[str, int] = {
                    r["stream"]: r["v"]
                    for r in await conn.fetch(_VERSIONS, names)
                    if r["v"] is not None
                }
                position = await conn.fetchval(
                    "SELECT coalesce(max(position), 0) FROM lifecycle_events"
                )
                rows: list[tuple[Any, ...]] = []
                rows_of: list[RunSummary] = []
                top_run = 0
                for p in batch:
                    try:
                        out, added, position, top = _place(p, by_id, versions, position)
                    except (ConcurrencyError, IdempotencyConflict) as exc:
                        if not look_up_ids:
                            raise _Recheck from None  # maybe a retry of a stored append
                        results.append(exc)
                        continue
                    results.append(out)
                    rows += added
                    if added or not any(w.events for w in p.writes):
                        rows_of += p.summaries  # not for a retry of a stored append
                    top_run = max(top_run, top)
                if rows:
                    await conn.copy_records_to_table(
                        "lifecycle_events",
                        records=rows,
                        columns=[
                            "position",
                            "stream",
                            "version",
                            "event_id",
                            "recorded_at",
                            "data",
                        ],
                    )
                if rows_of:
                    await _upsert(conn, rows_of)
                if top_run:
                    await conn.execute(
                        "UPDATE lifecycle_counters SET value = greatest(value, $1)"
                        " WHERE name = 'run_ids'",
                        top_run,
                    )
                if rows:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(position))
        except (asyncpg.UniqueViolationError, _Recheck):
            if look_up_ids:
                raise StoreError(f"{self.url}: an event id is stored twice") from None
            raise  # a stored event id, or a refusal a retry explains: redo with the lookup
        except BaseException as exc:  # the transaction failed: nothing of the batch is written
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(
                        exc
                        if isinstance(exc, Exception)
                        else StoreError(f"{self.url}: the append was interrupted")
                    )
            if not isinstance(exc, Exception):
                raise
            return
        for p, result in zip(batch, results, strict=True):
            if p.done.done():
                continue  # its appender was cancelled while waiting
            if isinstance(result, BaseException):
                p.done.set_exception(result)
            else:
                p.done.set_result(result)

    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        names = list(dict.fromkeys(streams))
        if not names:
            return []
        async with self._conn("read") as conn:
            rows = await conn.fetch(
                _SELECT + " WHERE stream = ANY($1::text[]) AND position > $2 ORDER BY position",
                names,
                max(after, 0),
            )
        return [_record(r) for r in rows]

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        if limit == 0:
            return []
        async with self._conn("read_all") as conn:
            rows = await conn.fetch(
                _SELECT + " WHERE position > $1 ORDER BY position LIMIT $2", max(after, 0), limit
            )
        return [_record(r) for r in rows]

    async def _head(self) -> int:
        async with self._conn("wait") as conn:
            head: int = await conn.fetchval(
                "SELECT coalesce(max(position), 0) FROM lifecycle_events"
            )
        return head

    async def wait(self, after: int) -> int:
        await anyio.lowlevel.checkpoint()
        while True:
            if self._notified is None:
                self._notified = asyncio.Event()
            notified = self._notified
            listening = await self._listen()
            try:
                head = await self._head()
            except StoreError:  # the server is away (restarting): wait for it, do not fail
                listening = False
            else:
                if head > after:
                    return head
            # a lost notification only delays; while not listening, poll often
            with anyio.move_on_after(self.poll if listening else min(self.poll, RELISTEN)):
                await notified.wait()

    async def _listen(self) -> bool:
        """Whether the store listens for notifications, listening again if the connection was
        lost (the server restarted; its loss wakes the waiters). Best effort: while it cannot
        reconnect, ``wait`` polls every ``RELISTEN`` seconds."""
        if self._listener is not None and not self._listener.is_closed():
            return True
        import asyncpg  # noqa: PLC0415

        try:
            listener = await asyncpg.connect(self._dsn, timeout=min(self.timeout, RELISTEN * 4))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        await listener.add_listener(CHANNEL, self._on_notify)
        listener.add_termination_listener(self._on_notify)
        old, self._listener = self._listener, listener
        if old is not None:
            with suppress(Exception):
                await old.close()
        return True

    # -- the run service's needs ----------------------------------------------------------------

    async def next_run_id(self) -> int:
        async with self._conn("next_run_id") as conn:
            value: int = await conn.fetchval(
                "UPDATE lifecycle_counters SET value = value + 1 WHERE name = 'run_ids'"
                " RETURNING value"
            )
        return value

    async def list_runs(
        self,
        *,
        name: str | None = None,
        state: str | None = None,
        dialect: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        if limit == 0:
            return []
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("name", name), ("state", state), ("dialect", dialect)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        if start_time is not None:
            args.append(as_utc(start_time))
            where.append(f"created_at >= ${len(args)}")
        if end_time is not None:
            args.append(as_utc(end_time))
            where.append(f"created_at <= ${len(args)}")
        args.append(limit)
        sql = "SELECT row FROM lifecycle_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY run_id DESC LIMIT ${len(args)}"
        async with self._conn("list_runs") as conn:
            rows = await conn.fetch(sql, *args)
        return [_summary(r["row"]) for r in rows]

    async def replace_summaries(self, summaries: Sequence[RunSummary]) -> None:
        async with self._conn("replace_summaries") as conn, conn.transaction():
            await conn.execute("DELETE FROM lifecycle_runs")
            await _upsert(conn, summaries)

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        # The log up to the head it has now, page by page; then, under the append lock (no
        # append can land in between), what was appended since, and the replace.
        after = await fold_pages(self, fold, await self._head(), progress)
        async with self._conn("rebuild") as conn, conn.transaction():
            await conn.execute("LOCK TABLE lifecycle_events IN EXCLUSIVE MODE")
            rest = await conn.fetch(_SELECT + " WHERE position > $1 ORDER BY position", after)
            if rest:
                fold.feed([_record(r) for r in rest])
                after = rest[-1]["position"]
            rows = fold.summaries()
            keep = set(fold.kept())
            before = [
                _summary(r["row"])
                for r in await conn.fetch("SELECT row FROM lifecycle_runs ORDER BY run_id")
            ]
            if progress is not None:
                progress(after, after)
            await conn.execute(
                "DELETE FROM lifecycle_runs WHERE NOT (run_id = ANY($1::bigint[]))", list(keep)
            )
            await _upsert(conn, [s for s in rows if s.run_id not in keep])
        return before

    async def put_blob(self, key: str, data: bytes) -> None:
        view = memoryview(data)
        async with self._conn("put_blob") as conn, conn.transaction():
            old = await conn.fetchval(
                "SELECT lo FROM lifecycle_blobs WHERE key = $1 FOR UPDATE", key
            )
            lo = None
            if len(view) > LARGE_BLOB:
                lo = await conn.fetchval("SELECT lo_create(0)")
                for offset in range(0, len(view), BLOB_CHUNK):
                    await conn.execute(
                        "SELECT lo_put($1, $2, $3)",
                        lo,
                        offset,
                        bytes(view[offset : offset + BLOB_CHUNK]),
                    )
            await conn.execute(
                "INSERT INTO lifecycle_blobs VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE"
                " SET data = EXCLUDED.data, lo = EXCLUDED.lo, size = EXCLUDED.size",
                key,
                None if lo is not None else bytes(view),
                lo,
                len(view),
            )
            if old is not None:
                await conn.execute("SELECT lo_unlink($1)", old)

    async def get_blob(self, key: str) -> bytes | None:
        async with self._conn("get_blob") as conn, conn.transaction(readonly=True):
            row = await conn.fetchrow(
                "SELECT data, lo, size FROM lifecycle_blobs WHERE key = $1", key
            )
            if row is None:
                return None
            if row["lo"] is None:
                return bytes(row["data"])
            out = bytearray()
            for offset in range(0, int(row["size"]), BLOB_CHUNK):
                out += await conn.fetchval(
                    "SELECT lo_get($1, $2, $3)", row["lo"], offset, BLOB_CHUNK
                )
            return bytes(out)

    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        async with self._conn("acquire_lease") as conn:
            got = await conn.fetchval(
                "INSERT INTO lifecycle_leases VALUES ($1, $2, now() + $3 * interval '1 second')"
                " ON CONFLICT (run_id) DO UPDATE SET owner = EXCLUDED.owner,"
                " expires_at = EXCLUDED.expires_at"
                " WHERE lifecycle_leases.owner = EXCLUDED.owner"
                " OR lifecycle_leases.expires_at <= now()"
                " RETURNING run_id",
                run_id,
                owner,
                float(ttl),
            )
        return got is not None

    async def release_lease(self, run_id: int, owner: str) -> None:
        async with self._conn("release_lease") as conn:
            await conn.execute(
                "DELETE FROM lifecycle_leases WHERE run_id = $1 AND owner = $2", run_id, owner
            )

    async def leases(self) -> list[Lease]:
        async with self._conn("leases") as conn:
            rows = await conn.fetch("SELECT * FROM lifecycle_leases ORDER BY run_id")
        return [
            Lease(run_id=r["run_id"], owner=r["owner"], expires_at=as_utc(r["expires_at"]))
            for r in rows
        ]


_BY_ID: Final = (
    "SELECT e.position, e.stream, e.version, e.event_id, e.recorded_at, e.data"
    " FROM unnest($1::text[]) AS i(id) JOIN lifecycle_events e ON e.event_id = i.id"
)
_VERSIONS: Final = (  # one index probe per stream, whatever the planner thinks of the table
    "SELECT s.stream, (SELECT e.version FROM lifecycle_events e WHERE e.stream = s.stream"
    " ORDER BY e.version DESC LIMIT 1) AS v FROM unnest($1::text[]) AS s(stream)"
)
_COLUMNS: Final = ["position", "stream", "version", "event_id", "recorded_at", "data"]
_SELECT: Final = (
    "SELECT position, stream, version, event_id, recorded_at, data FROM lifecycle_events"
)


def _record(row: Any) -> ev.Recorded:
    try:
        fact = ev.decode_fact(bytes(row["data"]))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CorruptLog(
            "postgresql", int(row["position"]), f"the fact at this position cannot be read: {exc}"
        ) from None
    return ev.Recorded(
        stream=row["stream"],
        version=row["version"],
        position=row["position"],
        event_id=row["event_id"],
        recorded_at=as_utc(row["recorded_at"]),
        event=fact,
    )


def _summary(data: Any) -> RunSummary:
    row: RunSummary = _row_decoder.decode(bytes(data))
    return summary_in_utc(row)


async def _upsert(conn: Any, summaries: Sequence[RunSummary]) -> None:
    latest = {s.run_id: s for s in summaries}  # the last row given for a run wins
    await conn.executemany(
        "INSERT INTO lifecycle_runs VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO"
        " UPDATE SET name = EXCLUDED.name, dialect = EXCLUDED.dialect, state = EXCLUDED.state,"
        " created_at = EXCLUDED.created_at, row = EXCLUDED.row",
        [
            (
                s.run_id,
                s.name,
                s.dialect,
                s.state,
                None if s.created_at is None else as_utc(s.created_at),
                _row_encoder.encode(summary_in_utc(s)),
            )
            for s in latest.values()
        ],
    )


class _Recheck(Exception):
    """An append of the batch failed its checks without the event-id lookup: redo the batch
    with it (a retry of a stored append must get the original records, not the error)."""


class _Pending:
    """One append waiting in the group commit."""

    __slots__ = ("data", "done", "ids", "summaries", "times", "writes")

    def __init__(
        self,
        *,
        writes: Sequence[Write],
        ids: list[tuple[str, ...]],
        times: list[tuple[_dt.datetime, ...]],
        data: list[list[bytes]],
        summaries: Sequence[RunSummary],
        done: asyncio.Future[list[ev.Recorded]],
    ) -> None:
        self.writes, self.ids, self.times, self.data = writes, ids, times, data
        self.summaries, self.done = summaries, done


def _place(
    p: _Pending, by_id: dict[str, ev.Recorded], versions: dict[str, int], position: int
) -> tuple[list[ev.Recorded], list[tuple[Any, ...]], int, int]:
    """Check one append against the log as the batch has left it so far (its event ids, the
    expected versions) and give its records and rows, updating ``by_id`` and ``versions``.
    Raises what the append must raise (nothing is then taken from it)."""
    flat = [i for group in p.ids for i in group]
    retry = resolve_retry(flat, [by_id.get(i) for i in flat])
    if retry is not None:
        return retry, [], position, 0
    for w in p.writes:
        check_expected(w.stream, w.expected_version, versions.get(w.stream, 0))
    out: list[ev.Recorded] = []
    rows: list[tuple[Any, ...]] = []
    top_run = 0
    for w, group, stamps, datas in zip(p.writes, p.ids, p.times, p.data, strict=True):
        if w.events and w.stream.startswith("run-"):
            head = w.stream[4:].partition("/")[0]
            if head.isdigit():
                top_run = max(top_run, int(head))
        for fact, event_id, stamp, data in zip(w.events, group, stamps, datas, strict=True):
            position += 1
            version = versions.get(w.stream, 0) + 1
            versions[w.stream] = version
            rows.append((position, w.stream, version, event_id, stamp, data))
            record = ev.Recorded(
                stream=w.stream,
                version=version,
                position=position,
                event_id=event_id,
                recorded_at=stamp,
                event=fact,  # type: ignore[arg-type]
            )
            out.append(record)
            by_id[event_id] = record
    return out, rows, position, top_run
