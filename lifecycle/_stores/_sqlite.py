"""``sqlite:///path/to/runs.db``: the embedded default store, through aiosqlite (asyncio only).

Two connections, each with its own aiosqlite thread: a **writer** and a **reader** (WAL lets
reads run beside a write). Every operation is one function run on a connection's thread — one
thread hop (40–50 µs) however many statements it executes.

Appends go through a **group commit**: every ``append`` queues a job; when no batch is on its way
to the writer thread, the appender yields once (so the other ready tasks queue theirs) and sends
one. The thread takes everything queued at the moment it gets to it — so appends that arrive
while it commits the previous batch ride in the next — and runs it as one ``BEGIN IMMEDIATE``
… ``COMMIT``: one commit, one fsync, for many runs. Each append is acknowledged only after that
commit. Expected versions and event ids are checked inside the
transaction, against the database and against the earlier appends of the same batch, so one
append that fails (``ConcurrencyError``, ``IdempotencyConflict``) writes nothing and costs its
neighbours nothing. If SQLite itself fails during the batch (a full disk), the batch is rolled
back and replayed one append per transaction, so only the appends that cannot be written fail
(``StoreError``), each as a whole — except when the write lock could not be had within
``busy_timeout`` (another process held it): then the whole batch fails at once with that one
error, so no caller waits more than about one ``busy_timeout``.

Durability: ``fast`` (default) is WAL + ``synchronous=NORMAL`` — survives a crash of the
process. SQLite then fsyncs the WAL only at checkpoints (every 10,000 pages, and on the last
close), so the store fsyncs it itself at least every ``SYNC_INTERVAL`` (1 s): a power loss may
roll back the commits of the last second (whole commits, newest first). ``durable`` is WAL +
``synchronous=FULL`` — survives power loss: each commit's WAL frames are fsynced before it is
acknowledged.

Faults from outside are checked where SQLite would stay silent: the file deleted or replaced
while open (see :mod:`._sqlite_file`), ``-wal``/``-shm`` files another user made, the wrong async
library.

Other processes may write the same file: SQLite serialises writers (``busy_timeout``), and
``wait`` polls the head position every ``poll_interval`` seconds besides being woken at once by
this store's own appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, Literal, Self, TypeVar

import aiosqlite
import anyio
import anyio.to_thread
import msgspec

from lifecycle import events as ev
from lifecycle._errors import StoreError

from . import _sqlite_file as sqlite_file
from . import _sqlite_pages as pages
from . import _sqlite_read as reads
from . import _sqlite_schema as schema
from ._base import (
    REBUILD_PAGE,
    Lease,
    RebuildProgress,
    RunGroup,
    RunStore,
    RunSummary,
    SummaryFold,
    Write,
    as_utc,
    fold_pages,
)
from ._sqlite_batch import Heads, Job, Prepared, apply_batch
from ._sqlite_rows import (
    SUMMARY_COLUMNS,
    json_list,
    lease_of,
    replace_runs,
    summary_of_row,
    summary_row,
    to_us,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")
Durability = Literal["fast", "durable"]

_SYNCHRONOUS: Final = {"fast": "NORMAL", "durable": "FULL"}

_HINTS: Final = {
    "SQLITE_FULL": "the disk is full, or max_page_count was reached: free space and retry",
    "SQLITE_READONLY": "the database is read-only: check the permissions of the file and of "
    "its directory (SQLite needs to create the -wal and -shm files beside it)",
    "SQLITE_BUSY": "another process held the database longer than busy_timeout",
    "SQLITE_CANTOPEN": "the file cannot be opened: check that its directory exists and the "
    "permissions",
    "SQLITE_NOTADB": "the file is not a SQLite database",
    "SQLITE_CORRUPT": "the database file is damaged",
    "SQLITE_IOERR": "the operating system reported an I/O error",
}

SYNC_INTERVAL: Final = 1.0
"""``fast``: the most time, in seconds, an acknowledged commit stays in the WAL unsynced (plus one
fsync) — SQLite alone syncs the WAL only at checkpoints, every 10,000 pages."""

_SEND: Final = object()  # resolves an appender's future: "you send the next batch"


def _path_of(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///runs.db`` → ``runs.db`` (relative); ``sqlite:////abs/runs.db`` → absolute
    (SQLAlchemy's convention). A query string carries options (``?durability=durable``)."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise StoreError(f"bad SQLite store URL {url!r}: write sqlite:///path/to/runs.db")
    path, _, query = rest[1:].partition("?")
    if path in {":memory:", ""}:
        raise StoreError(f"{url!r}: for an in-memory store use memory://")
    return urllib.parse.unquote(path), dict(urllib.parse.parse_qsl(query))


class SQLiteStore(RunStore):
    """A store in one SQLite file. ``async with SQLiteStore("sqlite:///runs.db") as store: ...``

    ``durability`` is ``"fast"`` (default: survives process crashes) or ``"durable"`` (survives
    power loss). ``readonly=True`` opens an existing store for reading only (writes raise
    ``StoreError``). ``busy_timeout`` is how long, in seconds, a write waits for another
    process's write to finish before failing. ``poll_interval`` bounds how late ``wait`` sees
    appends made by other processes. The URL's query string may carry ``durability`` and
    ``mode=ro``, so an environment variable can name a configured store.

    Raises ``StoreError`` on entering if the file is not a lifecycle database, has a newer
    schema, or cannot be opened; the file is left untouched then.
    """

    def __init__(
        self,
        url: str,
        *,
        durability: Durability | None = None,
        readonly: bool | None = None,
        busy_timeout: float = 10.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.url = url
        self.path, query = _path_of(url)
        self._abspath = os.path.abspath(self.path)
        unknown = set(query) - {"durability", "mode"}
        if unknown:
            raise StoreError(f"{url!r}: unknown option(s) {sorted(unknown)}")
        chosen = durability or query.get("durability", "fast")
        if chosen not in _SYNCHRONOUS:
            raise StoreError(f"durability must be 'fast' or 'durable', not {chosen!r}")
        self.durability: Durability = "durable" if chosen == "durable" else "fast"
        self.readonly = readonly if readonly is not None else query.get("mode") == "ro"
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._names: dict[int, str] = {}  # stream id → name; ids never change (reader thread)
        # the group commit: appends queue here; _sealing says a batch is on its way to the
        # writer thread and has not yet taken the queue. The lock guards both: the writer
        # thread takes the queue.
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._sealing = False
        self._heads = Heads()  # the writer thread's own
        self._head = 0
        self._polled_at = -1e9
        self._changed: anyio.Event | None = None
        # fast durability's periodic WAL sync: the writer thread's last sync and whether
        # commits came since; the loop's timer that syncs them when no commit comes to do it
        self._synced_at = -1e9
        self._unsynced = False
        self._sync_timer: asyncio.TimerHandle | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._identity: sqlite_file.Identity | None = None  # the file's (st_dev, st_ino), writers

    # -- opening and closing ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._reader is not None:
            return self
        _require_asyncio(self.url)
        await anyio.to_thread.run_sync(self._check_file)
        try:
            if not self.readonly:
                self._writer = await self._connect("rwc")
                await _on_thread(self._writer, self._setup_writer)
                self._identity = sqlite_file.identity_of(self._abspath)
            self._reader = await self._connect("ro" if self.readonly else "rw")
            await _on_thread(self._reader, self._setup_reader)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, sqlite3.Error):
                raise self._error("opening the store", exc, wrote=False) from exc
            raise
        return self

    def _check_file(self) -> None:
        schema.check_header(self.path)
        if self.readonly and not os.path.exists(self.path):
            raise StoreError(f"{self.path!r} does not exist: there is no store to open read-only")

    async def _connect(self, mode: str) -> aiosqlite.Connection:
        uri = f"file:{urllib.parse.quote(self._abspath)}?mode={mode}"
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; sqlite3's implicit
        # transactions would otherwise wrap reads and delay what they see.
        conn = aiosqlite.connect(uri, uri=True, isolation_level=None)
        try:
            return await conn
        except BaseException:
            # aiosqlite stops its thread without waiting: the thread then resolves a future on
            # this event loop, which may be closed by then ("Event loop is closed" in a thread).
            # Wait for it here, while the loop still runs.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(conn._thread.join, 5.0)
            raise

    def _pragmas(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        for pragma in schema.CONNECTION_PRAGMAS:
            conn.execute(pragma)

    def _setup_writer(self, conn: sqlite3.Connection) -> None:
        self._pragmas(conn)
        schema.prepare(conn, self.path, create=True)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.durability]}")
        for pragma in schema.WRITER_PRAGMAS:
            conn.execute(pragma)

    def _setup_reader(self, conn: sqlite3.Connection) -> None:
        self._pragmas(conn)
        if self.readonly:
            schema.prepare(conn, self.path, create=False)
        conn.execute("PRAGMA query_only = 1")

    async def aclose(self) -> None:
        """Close both connections (queued reads and writes finish first). Idempotent."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self._sync_task is not None:  # closing checkpoints, which syncs the WAL anyway
            with anyio.CancelScope(shield=True):
                await asyncio.wait([self._sync_task])  # it never raises (but cancelled)
            self._sync_task = None
        dbs = [db for db in (self._writer, self._reader) if db is not None]
        self._writer = self._reader = None
        failure: sqlite3.Error | None = None
        for db in dbs:
            try:
                # shielded: a cancelled close would leave the connection's thread running, to
                # hand its result to a loop that has closed meanwhile ("Event loop is closed")
                with anyio.CancelScope(shield=True):
                    await db.close()
            except sqlite3.Error as exc:
                failure = failure or exc
        if failure is not None:
            raise self._error("closing the store", failure, wrote=False) from failure

    # -- errors -----------------------------------------------------------------------------------

    def _error(self, doing: str, exc: BaseException, *, wrote: bool = True) -> StoreError:
        name = str(getattr(exc, "sqlite_errorname", ""))
        code = "_".join(name.split("_")[:2])
        hint = _HINTS.get(code, "")
        if code in {"SQLITE_READONLY", "SQLITE_CANTOPEN"}:
            hint = sqlite_file.foreign_files_hint(self._abspath) or hint
        tail = "; nothing was written" if wrote else ""
        error = StoreError(f"{self.url}: {doing} failed: {exc}{f' ({hint})' if hint else ''}{tail}")
        error.__cause__ = exc
        return error

    def _check_same_file(self) -> None:
        """Refuse to commit to a file deleted or replaced since it was opened (see
        :mod:`._sqlite_file`)."""
        sqlite_file.check_same_file(self.url, self._abspath, self._identity)

    def _closed(self) -> StoreError:
        return StoreError(f"{self.url} is not open: use it as `async with store:`")

    async def _read(self, fn: Callable[[sqlite3.Connection], T], doing: str, after: int = 0) -> T:
        """Run ``fn`` on the reader thread. A damaged file raises ``CorruptLog`` (reading the
        log after position ``after``); any other failure of SQLite, ``StoreError``."""
        db = self._reader
        if db is None:
            raise self._closed()
        try:
            return await _on_thread(db, fn)
        except sqlite3.Error as exc:
            if reads.is_damage(exc):
                why = f"{doing} after position {after} failed: {exc}"
                raise reads.damaged(self.path, after + 1, why) from exc
            raise self._error(doing, exc, wrote=False) from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T], doing: str) -> T:
        """Run ``fn`` in its own write transaction on the writer thread (FIFO with the group
        commits), rolled back if it raises."""
        db = self._writer
        if db is None:
            raise self._closed() if not self.readonly else StoreError(f"{self.url} is read-only")

        def txn(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_same_file()
                result = fn(conn)
                conn.execute("COMMIT")
                self._committed()
            except BaseException:
                schema.rollback(conn)
                raise
            return result

        try:
            result = await _on_thread(db, txn)
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from exc
        self._arm_sync()
        return result

    # -- appending: the group commit --------------------------------------------------------------

    async def append(
        self,
        writes: Sequence[Write],
        *,
        summaries: Sequence[RunSummary] = (),
        at: _dt.datetime | None = None,
    ) -> list[ev.Recorded]:
        if at is not None and at.tzinfo is not _dt.UTC:
            at = as_utc(at)  # naive: UTC; another zone: converted, as read() gives it back
        # Event ids: when the caller chose some (a retry may be coming), every id of the
        # append is made here so the whole append can be looked up; otherwise the writer
        # thread makes the batch's ids in one go.
        given = False
        for w in writes:
            if w.event_ids is not None:
                given = True
                break
        prepared: list[Prepared] = []
        flat: list[str] = []
        encode = ev.encode_fact
        for w in writes:
            ids = None
            if given:
                ids = w.ids()
                flat += ids
            try:
                blobs = [encode(f) for f in w.events]
            except (TypeError, ValueError, msgspec.EncodeError) as exc:
                raise StoreError(f"{w.stream}: a fact cannot be stored: {exc}") from exc
            times = None
            if w.recorded_at is not None:  # kept in UTC, as read() gives them back
                times = tuple(as_utc(t) for t in w.times(_dt.datetime.min))
            prepared.append((w.stream, w.expected_version, ids, w.events, blobs, times))
        rows = [summary_row(s) for s in summaries] if summaries else []
        job = Job(prepared, flat, given, rows, at)
        records: list[ev.Recorded] = await self._submit(job)
        return records

    async def next_run_id(self) -> int:
        # allocated in the group commit too: many concurrent create()s share one transaction
        job = Job(None, [], False, [], None)
        run_id: int = await self._submit(job)
        return run_id

    async def _submit(self, job: Job) -> Any:
        db = self._writer
        if db is None:
            raise self._closed() if not self.readonly else StoreError(f"{self.url} is read-only")
        loop = asyncio.get_running_loop()
        first = job.future = loop.create_future()
        with self._lock:
            self._queue.append(job)
            duty = not self._sealing  # no batch is on its way: this task sends one
            self._sealing = True
        sent = False
        try:
            if duty:
                # One turn of the loop: the tasks that are ready (those the last commit woke,
                # say) queue their appends too, before the batch is sent.
                await asyncio.sleep(0)
            elif await first is _SEND:  # the task that was to send it was cancelled
                job.future = loop.create_future()
                duty = True
            if duty:
                # The batch takes whatever is queued when the writer thread gets to it, so
                # appends that arrive meanwhile ride along. Its results come back through
                # _deliver, scheduled before this await returns. (The batch is on the
                # thread's queue before the first suspension, so it is sent even if this
                # task is cancelled here.)
                sent = True
                try:
                    await _on_thread(db, partial(self._pull, loop=loop))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # it never reached the thread: the store was closed
                    self._fail_queued(exc)
            await job.future
        except BaseException:
            with self._lock:
                if not job.taken:  # never sent: forget it, nothing will be written for it
                    self._queue.remove(job)
            told = first.done() and not first.cancelled() and first.result() is _SEND
            if (duty or told) and not sent:
                self._pass_duty()
            raise
        if isinstance(job.outcome, BaseException):
            raise job.outcome
        return job.outcome

    def _pass_duty(self) -> None:
        """The task that was to send the next batch was cancelled first: ask another queued
        appender to send it (or, with none left, let the next one)."""
        with self._lock:
            for other in self._queue:
                if other.future is not None and not other.future.done():
                    other.future.set_result(_SEND)
                    return
            self._sealing = False

    def _pull(self, conn: sqlite3.Connection, *, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: seal the queue into one batch, commit it, and hand the results
        to the loop (before this function returns, so before its own future resolves)."""
        with self._lock:
            batch, self._queue = self._queue, []
            self._sealing = False
            for job in batch:
                job.taken = True
        if not batch:
            return
        try:
            results = self._commit(conn, batch)
        except StoreError as exc:  # the file is gone: said as it is, for every append
            results = [StoreError(*exc.args) for _ in batch]
        except BaseException as exc:  # never leave an appender waiting, whatever happened
            results = [self._error("append", exc) for _ in batch]
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(self._deliver, batch, results)

    def _fail_queued(self, exc: Exception) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
            self._sealing = False
            for job in batch:
                job.taken = True
        self._deliver(batch, [self._error("append", exc) for _ in batch])

    def _deliver(self, batch: list[Job], results: list[object]) -> None:
        head = self._head
        for job, result in zip(batch, results, strict=True):
            job.outcome = result
            if isinstance(result, list) and result:
                head = max(head, result[-1].position)
            f = job.future
            if f is not None and not f.done():
                f.set_result(None)
        self._advance(head)
        self._arm_sync()

    def _commit(self, conn: sqlite3.Connection, batch: list[Job]) -> list[object]:
        heads = self._heads
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._check_same_file()
            heads.check(conn)
            results = apply_batch(conn, batch, heads, self.path)
            conn.execute("COMMIT")
            heads.commit()
            self._committed()
            return results
        except BaseException as exc:
            heads.clear()
            schema.rollback(conn)  # whatever went wrong, never leave the transaction open
            if not isinstance(exc, sqlite3.Error):
                raise
            if len(batch) == 1 or _is_busy(exc):
                # Busy: another process held the write lock for the whole busy_timeout. Every
                # append of the batch fails with that one wait; replaying them one by one would
                # make each wait busy_timeout again (10 appends: 10 waits).
                return [self._error("append", exc) for _ in batch]  # one cause, shared
        # SQLite failed somewhere in the batch (a full disk, say). Replay it one append per
        # transaction, so only the appends that cannot be written fail. (Not savepoints:
        # SQLITE_FULL, IOERR, NOMEM and BUSY abort the whole transaction, savepoints and all.
        # The failures that do not come from SQLite — versions, ids — never get this far.)
        results = []
        for job in batch:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = apply_batch(conn, [job], None, self.path)[0]
                conn.execute("COMMIT")
                self._committed()
            except BaseException as exc:
                schema.rollback(conn)
                if not isinstance(exc, sqlite3.Error):
                    raise
                result = self._error("append", exc)
            results.append(result)
        return results

    # -- fast durability: the WAL synced at least every SYNC_INTERVAL ----------------------------

    def _committed(self) -> None:
        """On the writer thread, after each COMMIT. ``fast`` (``synchronous=NORMAL``) leaves the
        WAL unsynced until a checkpoint; sync it here when the last sync is SYNC_INTERVAL old,
        else note that commits wait for one (the loop's timer does it if no commit comes)."""
        if self.durability != "fast":
            return  # durable: SQLite synced the WAL before COMMIT returned
        if time.monotonic() - self._synced_at >= SYNC_INTERVAL:
            self._sync_wal()
        else:
            self._unsynced = True

    def _sync_wal(self) -> None:
        """fsync the WAL file (writer thread): everything committed so far survives power
        loss. Any descriptor of the file will do for fsync; SQLite's own is not reachable."""
        self._unsynced = False
        self._synced_at = time.monotonic()
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self._abspath + "-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _arm_sync(self) -> None:
        """On the loop, after commits: if some are unsynced, sync them SYNC_INTERVAL from now
        unless a later commit does first."""
        if self._unsynced and self._sync_timer is None and self._writer is not None:
            loop = asyncio.get_running_loop()
            self._sync_timer = loop.call_later(SYNC_INTERVAL, self._sync_later, loop)

    def _sync_later(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sync_timer = None
        db = self._writer
        if db is not None and self._unsynced and self._sync_task is None:
            self._sync_task = loop.create_task(self._sync_on_thread(db))

    async def _sync_on_thread(self, db: aiosqlite.Connection) -> None:
        def sync(conn: sqlite3.Connection) -> None:
            if self._unsynced:  # a commit may have synced meanwhile
                self._sync_wal()

        try:
            await _on_thread(db, sync)
        except (OSError, ValueError, sqlite3.Error):
            pass  # the store closed meanwhile (closing syncs), or the disk failed: next commit
        finally:
            self._sync_task = None
        self._arm_sync()  # commits that came while it ran

    # -- reading ----------------------------------------------------------------------------------

    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        if not streams:
            return []
        names = json_list(list(dict.fromkeys(streams)))  # a stream named twice: once

        def read(conn: sqlite3.Connection) -> list[ev.Recorded]:
            rows = conn.execute(reads.SELECT_READ, (names, after)).fetchall()
            return reads.records_of(conn, rows, self._names, self.path, versions=True)

        return await self._read(read, "reading streams", after)

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        def read_all(conn: sqlite3.Connection) -> list[ev.Recorded]:
            # as columns: one SQLite step for the whole page instead of one per row
            columns = pages.columns_of(
                conn, after, -1 if limit is None else limit, self._names, self.path
            )
            return pages.records_of_columns(columns)

        return await self._read(read_all, "reading the log", after)

    async def _read_range(
        self, *, after: int, upto: int, started: threading.Event | None = None
    ) -> pages.Page:
        """The rows with a position in ``(after, upto]``, as one
        :class:`~._sqlite_pages.Page` (with the log's last position), for replay's fast path:
        read in a single SQLite step (without the GIL: the event loop runs meanwhile), decoded
        by the caller (``page.columns(names)``, names from :meth:`_read_names`; or
        :meth:`_read_columns` when either says ``None``). ``started`` is set when the reader
        thread begins (see the replayer's ``_column_pages``)."""

        def read_range(conn: sqlite3.Connection) -> pages.Page:
            if started is not None:
                started.set()
            return pages.read_range(conn, after, upto)

        return await self._read(read_range, "reading the log", after)

    async def _read_names(self, *, after: int = 0) -> tuple[dict[int, str], int]:
        """The names of the streams with an id above ``after``, and the highest id (see
        :func:`~._sqlite_pages.names_after`)."""

        def read_names(conn: sqlite3.Connection) -> tuple[dict[int, str], int]:
            return pages.names_after(conn, after)

        return await self._read(read_names, "reading the stream names")

    async def _read_columns(
        self, *, after: int = 0, limit: int = -1, upto: int | None = None
    ) -> pages.Columns:
        """``read_all`` as :class:`~._sqlite_pages.Columns`, read row by row (given ``upto``:
        the rows with a position in ``(after, upto]``)."""

        def read_columns(conn: sqlite3.Connection) -> pages.Columns:
            return pages.columns_of_rows(conn, after, limit, self._names, self.path, upto=upto)

        return await self._read(read_columns, "reading the log", after)

    async def wait(self, after: int) -> int:
        while True:
            if self._head > after:
                return self._head
            now = time.monotonic()
            if now - self._polled_at >= self.poll_interval:
                # other processes' appends: look at the head, at most once per poll_interval
                # however many tasks wait
                self._polled_at = now
                self._advance(await self._read(reads.max_position, "reading the head position"))
                continue
            if self._changed is None:
                self._changed = anyio.Event()
            with anyio.move_on_after(self._polled_at + self.poll_interval - now):
                await self._changed.wait()

    def _advance(self, head: int) -> None:
        if head > self._head:
            self._head = head
            if self._changed is not None:
                self._changed.set()
                self._changed = None

    # -- the read model ---------------------------------------------------------------------------

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
        where = []
        args: list[Any] = []
        for column, value in (("name", name), ("state", state), ("dialect", dialect)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if start_time is not None:
            where.append("created_at >= ?")
            args.append(to_us(start_time))
        if end_time is not None:
            where.append("created_at <= ?")
            args.append(to_us(end_time))
        filters = (" WHERE " + " AND ".join(where)) if where else ""
        if limit is None:
            sql = f"SELECT {SUMMARY_COLUMNS} FROM runs{filters} ORDER BY run_id DESC"
        else:
            # the newest run ids first, from an index alone where one covers the filters
            # (every index holds the run id); then only those rows: `job ls` reads 10 runs of
            # a 1,000-run job in 0.2 ms instead of reading and sorting all its rows (1.7 ms)
            sql = (
                f"SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id IN "
                f"(SELECT run_id FROM runs{filters} ORDER BY run_id DESC LIMIT ?) "
                "ORDER BY run_id DESC"
            )
            args.append(limit)

        def query(conn: sqlite3.Connection) -> list[RunSummary]:
            return [summary_of_row(r) for r in conn.execute(sql, args)]

        return await self._read(query, "listing runs")

    async def run_groups(self) -> list[RunGroup]:
        # named runs from the name index alone (it holds the run id); the dialect of the newest
        # by its id; unnamed runs per dialect (their rows are read: no index has the dialect)
        sql = (
            "SELECT g.name, r.dialect, g.n, g.last FROM (SELECT name, count(*) AS n, "
            "max(run_id) AS last FROM runs WHERE name != '' GROUP BY name) AS g "
            "JOIN runs AS r ON r.run_id = g.last "
            "UNION ALL SELECT '', dialect, count(*), max(run_id) FROM runs WHERE name = '' "
            "GROUP BY dialect ORDER BY 1, 2"
        )

        def query(conn: sqlite3.Connection) -> list[RunGroup]:
            return [
                RunGroup(name=n, dialect=d, runs=c, last_run_id=last)
                for n, d, c, last in conn.execute(sql)
            ]

        return await self._read(query, "counting runs")

    async def replace_summaries(self, summaries: Sequence[RunSummary]) -> None:
        rows = [summary_row(s) for s in summaries]

        def replace(conn: sqlite3.Connection) -> None:
            replace_runs(conn, rows)

        await self._write(replace, "replacing the runs read model")

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        """Atomic with respect to every writer, in this process or another, holding the write
        lock only for the end: the log up to the head position it had at the start is folded
        page by page from the reader connection while appends go on (never further: appends
        that keep coming cannot keep it reading); then one ``BEGIN IMMEDIATE`` transaction on
        the writer thread folds the records committed since and makes the ``runs`` table hold
        exactly the fold's rows (but those of ``fold.kept()``, left as they are), writing only
        those that differ. No append can commit between that last read and the replace.

        Writers, in this process and others, wait for that transaction, each up to its
        ``busy_timeout`` (10 s by default). It reads the whole table: about 4 µs a run when no
        row changes and 12–15 µs when every row does (measured once, at 50,000 runs), besides
        folding the records appended during the first pass. At a million runs that is about
        4 s, but 12–15 s for a rebuild that rewrites every row: past the default timeout, so
        other writers' appends would fail — rebuild such a store while they are idle, or give
        them a longer ``busy_timeout``."""
        if self._writer is None:
            raise self._closed() if not self.readonly else StoreError(f"{self.url} is read-only")
        head = await self._read(reads.max_position, "reading the head position")
        after = await fold_pages(self, fold, head, progress)
        # the rows as of now, made outside the lock: inside, only the runs that move meanwhile
        # are made again
        made = {s.run_id: (s, summary_row(s)) for s in fold.summaries()}

        def finish(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            last = after
            names: dict[int, str] = {}  # not the reader's cache: this is the writer thread
            while True:
                rows = conn.execute(reads.SELECT_ALL, (last, REBUILD_PAGE)).fetchall()
                if not rows:
                    break
                fold.feed(reads.records_of(conn, rows, names, self.path))
                last = rows[-1][0]
            new = []
            for s in fold.summaries():
                hit = made.get(s.run_id)
                # a fold that keeps its rows (RunsFold) gives the very same object for a run
                # that did not move: reuse its row; any other is converted again
                new.append(hit[1] if hit is not None and hit[0] is s else summary_row(s))
            keep = set(fold.kept())
            if progress is not None:  # before the replace: if it raises, nothing changes
                progress(last, last)
            return replace_runs(conn, new, keep=keep)

        before = await self._write(finish, "rebuilding the runs read model")
        return [summary_of_row(row) for row in before]

    # -- blobs and leases -------------------------------------------------------------------------

    async def put_blob(self, key: str, data: bytes) -> None:
        value = bytes(data)

        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO blobs (key, data) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                (key, value),
            )

        await self._write(put, "storing a blob")

    async def get_blob(self, key: str) -> bytes | None:
        def get(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(get, "reading a blob")

    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        def acquire(conn: sqlite3.Connection) -> bool:
            now = to_us(_dt.datetime.now(_dt.UTC))
            held = conn.execute(
                "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            if held is not None and held[0] != owner and held[1] > now:
                return False
            conn.execute(
                "INSERT INTO leases (run_id, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at",
                (run_id, owner, now + int(ttl * 1_000_000)),
            )
            return True

        return await self._write(acquire, "taking a lease")

    async def release_lease(self, run_id: int, owner: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))

        await self._write(release, "releasing a lease")

    async def leases(self) -> list[Lease]:
        def query(conn: sqlite3.Connection) -> list[Lease]:
            rows = conn.execute("SELECT run_id, owner, expires_at FROM leases ORDER BY run_id")
            return [lease_of(r) for r in rows]

        return await self._read(query, "reading leases")


# -- helpers --------------------------------------------------------------------------------------


def _require_asyncio(url: str) -> None:
    """aiosqlite hands its results to an asyncio loop: under trio (or with no loop at all) it
    would fail later with the other library's internal error. Refuse at once, saying what
    works."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return
    library = "another async library"
    sniffio = sys.modules.get("sniffio")  # loaded by trio (anyio 4.10+ does without it)
    with contextlib.suppress(Exception):
        library = str(sniffio.current_async_library())  # type: ignore[union-attr]
    raise StoreError(
        f"{url}: the SQLite store runs on asyncio only (aiosqlite), not {library}: run it under "
        'asyncio (anyio.run(main, backend="asyncio")) or use the blocking Runs; memory:// works '
        "on trio too"
    )


def _is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or one of its extended codes: the lock was not had within busy_timeout."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


async def _on_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(connection)`` on the aiosqlite connection's own thread, in one hop.

    aiosqlite's public methods hop once per statement; ``Connection._execute`` is the one
    primitive they are all built on, so we call it directly (checked against aiosqlite 0.20–0.22).
    """
    return await db._execute(lambda: fn(db._conn))  # type: ignore[no-any-return,no-untyped-call]
