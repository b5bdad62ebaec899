"""The ``runs`` read model: rows that follow the log (not only its state changes), rebuilding it
— with a report of what differed, atomically while others append — and the SQLite schema's
move from version 1 (a ``version`` column) to 2, in place, without touching read-only opens.

The same checks for any store are in ``lifecycle.testing`` (``rebuild_summaries``,
``naive_times``); the command is tested in ``tests/cli/test_rebuild.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._dialects import _REGISTRY
from lifecycle._errors import StoreError
from lifecycle._runs import summary_of
from lifecycle._stores import RunStore, RunSummary, Write, _base, _memory, _sqlite
from lifecycle._stores import _sqlite_schema as schema
from lifecycle._stores._rebuild import RunsFold, rebuild_summaries
from lifecycle._stores._sqlite import SQLiteStore
from lifecycle._stores._sqlite_schema import APPLICATION_ID, SCHEMA_VERSION
from lifecycle._views import Projector

from ._dialects import declare_acme

pytestmark = pytest.mark.anyio

SQLITE_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture(params=["memory", "sqlite"])
def make_url(request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path) -> str:
    if request.param == "sqlite":
        if anyio_backend != "asyncio":
            pytest.skip("aiosqlite runs on asyncio only")
        return f"sqlite:///{tmp_path}/runs.db"
    return "memory://"


async def populate(runs: lifecycle.AsyncRuns) -> None:
    """Runs of every dialect, ended and still running, with reruns, and facts that move a row
    without a state change (a Qualytics promote starts in Running: its ExecutionStarted only
    sets ``started_at``)."""
    a = await runs.create("qualytics", operation="profile", containers=["o", "c"], name="nightly")
    await runs.record(a.id, ev.ExecutionStarted())
    await runs.record(a.id, ev.LogRecorded(level="warning", text="slow"))
    await runs.record(a.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="o")
    await runs.record(a.id, [ev.ExecutionStarted(), ev.ExecutionFailed(error="x")], container="c")
    await runs.record(a.id, ev.ExecutionSucceeded())  # Success with the Warning indicator
    b = await runs.create("domino", name="train")
    await runs.record(b.id, START_SEQUENCE)
    await runs.abort(b.id)
    c = await runs.rerun(b.id, job_version=2)
    await runs.record(c.id, [*START_SEQUENCE, ev.OutOfMemory(limit_bytes=1024)])
    d = await runs.create("datatailr", name="numbers", containers=["t1"])
    await runs.record(d.id, ev.ResourcesRequested())
    await runs.record(d.id, ev.LogRecorded(text="waiting"))
    promote = await runs.create("qualytics", operation="promote", name="release")
    await runs.record(promote.id, ev.ExecutionStarted())
    await runs.create("qualytics", operation="scan", name="nightly")
    await runs.resume(c.id)


async def fresh_fold(store: RunStore) -> list[RunSummary]:
    """The read model a fold of the whole log gives, newest first (as ``list_runs``)."""
    projector = Projector(strict=False)
    projector.feed(r for r in await store.read_all() if r.stream.startswith("run-"))
    return sorted((summary_of(v) for v in projector.views()), key=lambda s: -s.run_id)


# -- rows follow the log --------------------------------------------------------------------------


def test_a_summary_has_no_version() -> None:
    assert "version" not in RunSummary.__struct_fields__  # the run's is in runs.get(id).version


async def test_rows_follow_every_fact_that_moves_them(make_url: str) -> None:
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        listed = await runs.list()
        assert listed == await fresh_fold(runs.store)
        (promote,) = await runs.list(name="release")
        view = await runs.get(promote.id)
        assert (promote.state, view.state) == ("Running", "Running")
        assert promote.started_at is not None and promote.started_at == view.started_at


async def test_a_rebuild_reports_what_differed_and_restores_the_rows(make_url: str) -> None:
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        original = await runs.list()
        first, second, *_ = original
        stray = msgspec.structs.replace(first, run_id=99, name="stray")
        await runs.store.replace_summaries(
            [stray, msgspec.structs.replace(second, state="Tampered"), *original[3:]]
        )
        seen: list[tuple[int, int | None]] = []
        report = await rebuild_summaries(runs.store, progress=lambda *a: seen.append(a))
        assert await runs.list() == original
        lost = original[2].run_id
        assert (report.added, report.changed, report.removed) == (
            sorted([first.run_id, lost]),
            [second.run_id],
            [99],
        )
        assert report.unchanged == len(original) - 3
        assert (report.runs, report.diverged, report.rowless, report.ignored) == (
            len(original),
            [],
            [],
            0,
        )
        records = await runs.store.read_all()
        assert (report.records, report.position) == (len(records), records[-1].position)
        assert seen[-1] == (records[-1].position, records[-1].position)
        again = await rebuild_summaries(runs.store)
        assert not again.differed and again.unchanged == len(original)
        assert "0 added, 0 changed, 0 removed" in str(again)


async def test_a_run_that_does_not_fold_is_reported_and_other_streams_skipped(
    make_url: str,
) -> None:
    async with lifecycle.AsyncRuns(make_url) as runs:
        run = await runs.create("domino", name="broken")
        await runs.record(run.id, [*START_SEQUENCE, ev.ExecutionSucceeded()])
        before = await runs.get(run.id)
        # written past the run service, which would refuse them: the log no longer folds
        await runs.store.append([Write(stream=f"run-{run.id}", events=(ev.LogRecorded(),))])
        await runs.store.append([Write(stream="run-77/x", events=(ev.ExecutionStarted(),))])
        await runs.store.append([Write(stream="inbox", events=(ev.LogRecorded(),))])
        report = await rebuild_summaries(runs.store)
        assert [(d.run_id, d.fact, d.state) for d in report.diverged] == [
            (run.id, "LogRecorded", "Succeeded"),
            (77, "ExecutionStarted", "[*]"),
        ]
        assert report.rowless == [77] and report.ignored == 1
        (row,) = await runs.list()
        assert row == summary_of(before)  # the run as of just before the fact
        assert "2 diverged" in str(report) and f"run {run.id}: run-{run.id} v" in str(report)


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[lifecycle.Dialect]:
    """``acme``, registered until the test unregisters it (the registry is process-wide)."""
    monkeypatch.delitem(_REGISTRY, "acme", raising=False)
    yield lifecycle.register_dialect(declare_acme())
    _REGISTRY.pop("acme", None)


async def test_a_run_of_a_dialect_not_registered_here_keeps_its_row_and_is_reported(
    make_url: str, acme: lifecycle.Dialect
) -> None:
    """The runs of a dialect this process does not know are not folded: their rows stay exactly
    as they were (even a wrong one: nothing here can tell), a run without a row stays without
    one, the other runs are rebuilt, and the report lists them as skipped (not complete)."""
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        mine = await runs.create("acme", name="user")
        await runs.record(mine.id, [ev.ExecutionStarted(), ev.LogRecorded(text="hi")])
        unfolded = (await runs.get(mine.id)).version
        original = await runs.list()
        _REGISTRY.pop("acme")  # as in another process, which never registered it
        # a run of it with no row (written past the run service), and rows damaged by hand
        await runs.store.append([Write(stream="run-50", events=(ev.Requested(dialect="acme"),))])
        await runs.store.append([Write(stream="run-50/c", events=(ev.LogRecorded(),))])
        tampered = {r.run_id: r for r in original}
        other = next(r for r in original if r.dialect == "domino")
        tampered[mine.id] = msgspec.structs.replace(tampered[mine.id], state="Tampered")
        tampered[other.run_id] = msgspec.structs.replace(other, state="Tampered")
        await runs.store.replace_summaries(list(tampered.values()))

        report = await rebuild_summaries(runs.store)
        assert [(s.run_id, s.dialect, s.records) for s in report.skipped] == [
            (mine.id, "acme", unfolded),
            (50, "acme", 2),
        ]
        assert not report.complete and report.changed == [other.run_id]
        assert (report.added, report.removed, report.diverged, report.rowless) == ([], [], [], [])
        assert report.runs == len(original) - 1 and report.unchanged == len(original) - 2
        listed = {r.run_id: r for r in await runs.list()}
        assert listed[mine.id] == tampered[mine.id]  # left exactly as it was
        assert 50 not in listed
        assert [r for r in await runs.list() if r.run_id != mine.id] == [
            r for r in original if r.run_id != mine.id
        ]
        assert "2 skipped (rows left as they were)" in str(report)
        assert f"run {mine.id}: dialect 'acme' is not registered in this process" in str(report)


async def test_rebuilds_amid_appends_end_equal_to_a_fresh_fold(make_url: str) -> None:
    """Tasks create runs and drive them to their end through the run service while the read
    model is rebuilt again and again: every rebuild is atomic, so afterwards the rows are the
    fold of the log — none is left as it was before a fact it missed."""
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        populated = len(await runs.list())
        done = anyio.Event()

        async def worker(k: int) -> None:
            for i in range(12):
                run = await runs.create("domino", name=f"w{k}", containers=["a"])
                await runs.record(run.id, START_SEQUENCE)
                await runs.record(run.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="a")
                end = ev.ExecutionSucceeded() if i % 3 else ev.ExecutionFailed(error="no")
                await runs.record(run.id, end)

        rebuilt = 0

        async def rebuilder() -> None:
            nonlocal rebuilt
            while not done.is_set():
                await rebuild_summaries(runs.store)
                rebuilt += 1
                await anyio.lowlevel.checkpoint()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rebuilder)
                async with anyio.create_task_group() as workers:
                    for k in range(4):
                        workers.start_soon(worker, k)
                done.set()
        assert rebuilt >= 2
        listed = await runs.list()
        assert len(listed) == populated + 4 * 12
        assert listed == await fresh_fold(runs.store)


def from_elsewhere(
    store: RunStore, backend: str
) -> Callable[[Callable[[lifecycle.AsyncRuns], Awaitable[object]]], None]:
    """``do(fn)``: run ``fn(runs)`` to its end from synchronous code on the event loop (a
    rebuild's ``progress``), so that what it appends is committed, for certain, between two
    steps of the rebuild — through a run service of its own on another thread with its own
    event loop, on another connection to the SQLite file (as another process would), on the
    same memory store."""

    async def main(fn: Callable[[lifecycle.AsyncRuns], Awaitable[object]]) -> None:
        if isinstance(store, SQLiteStore):
            async with lifecycle.AsyncRuns(store.url) as runs:
                await fn(runs)
        else:
            await fn(lifecycle.AsyncRuns(store))

    def do(fn: Callable[[lifecycle.AsyncRuns], Awaitable[object]]) -> None:
        failed: list[BaseException] = []

        def target() -> None:
            try:
                anyio.run(main, fn, backend=backend)
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        if failed:
            raise failed[0]

    return do


async def drive_to_the_end(runs: lifecycle.AsyncRuns, name: str) -> None:
    run = await runs.create("domino", name=name)
    await runs.record(run.id, [*START_SEQUENCE, ev.ExecutionSucceeded()])


async def test_an_append_after_the_first_pass_is_folded_inside_the_lock(
    make_url: str, anyio_backend: str
) -> None:
    """Another writer drives runs to their end right after the rebuild's first page was read
    (from its ``progress``): those facts land after the first pass and before the replace, so
    only the locked step can fold them — and it must, or their rows revert for good."""
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        (nightly,) = await runs.list(name="nightly", state="Queued")
        do = from_elsewhere(runs.store, anyio_backend)
        loop_thread = threading.current_thread()
        calls: list[tuple[int, int | None]] = []

        async def meanwhile(other: lifecycle.AsyncRuns) -> None:
            await drive_to_the_end(other, "late")
            await other.record(nightly.run_id, ev.ExecutionStarted())

        def progress(position: int, head: int | None) -> None:
            calls.append((position, head))
            if len(calls) == 1:
                assert threading.current_thread() is loop_thread
                do(meanwhile)

        report = await rebuild_summaries(runs.store, progress=progress)
        listed = await runs.list()
        assert [r.state for r in listed if r.name == "late"] == ["Succeeded"]
        assert [r.state for r in listed if r.run_id == nightly.run_id] == ["Running"]
        assert listed == await fresh_fold(runs.store)
        records = await runs.store.read_all()
        assert len(calls) == 2  # the page, then the end (the log fits in one page)
        assert calls[0][0] < records[-1].position == calls[-1][0] == report.position


async def test_the_first_pass_reads_no_further_than_the_head_it_started_from(
    make_url: str, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends keep coming — a page's worth each time the rebuild reads a page: the first pass
    must stop at the head position it saw when it started (the locked step reads the rest),
    not follow the log for as long as someone appends."""
    page = 3
    monkeypatch.setattr(_memory, "REBUILD_PAGE", page)
    monkeypatch.setattr(_sqlite, "REBUILD_PAGE", page)
    monkeypatch.setattr(_base, "REBUILD_PAGE", page)
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        head = (await runs.store.read_all())[-1].position
        pages = -(-head // page)
        do = from_elsewhere(runs.store, anyio_backend)
        loop_thread = threading.current_thread()
        calls: list[tuple[int, int | None]] = []

        async def noise(other: lifecycle.AsyncRuns) -> None:  # a page of records, in no run
            await other.store.append([Write(stream="noise", events=(ev.LogRecorded(),) * page)])

        def progress(position: int, head_: int | None) -> None:
            calls.append((position, head_))
            assert len(calls) <= pages + 5, (
                f"{len(calls)} progress calls, for a log of {pages} pages when the rebuild "
                "started: its first pass follows the appends for ever"
            )
            if threading.current_thread() is loop_thread:  # not from inside the write lock
                do(noise)

        report = await rebuild_summaries(runs.store, progress=progress)
        assert len(calls) == pages + 1  # the first pass, then the end
        assert all(h == max(head, p) for p, h in calls[:-1])
        assert report.position == calls[-1][0] >= head + pages * page  # the rest: locked
        assert report.ignored > 0 and await runs.list() == await fresh_fold(runs.store)


async def test_a_progress_callback_that_raises_leaves_the_read_model_as_it_was(
    make_url: str,
) -> None:
    """Its last call comes before the replace, so an exception from it — the last chance to
    stop the rebuild — changes nothing."""
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        original = await runs.list()
        tampered = [msgspec.structs.replace(original[0], state="Tampered"), *original[1:]]
        await runs.store.replace_summaries(tampered)
        calls: list[tuple[int, int | None]] = []

        class Stop(Exception):
            pass

        def progress(position: int, head: int | None) -> None:
            calls.append((position, head))
            if len(calls) == 2:  # the last: the log fits in one page
                raise Stop

        with pytest.raises(Stop):
            await rebuild_summaries(runs.store, progress=progress)
        assert len(calls) == 2
        assert await runs.list() == tampered
        await rebuild_summaries(runs.store)
        assert await runs.list() == original


@SQLITE_ONLY
async def test_a_read_only_store_cannot_rebuild(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    async with lifecycle.AsyncRuns(url) as runs:
        await populate(runs)
    async with lifecycle.AsyncRuns(url + "?mode=ro") as runs:
        with pytest.raises(StoreError, match="read-only"):
            await rebuild_summaries(runs.store)


async def test_runs_fold_makes_again_only_the_rows_of_runs_fed_since() -> None:
    async with lifecycle.AsyncRuns("memory://") as runs:
        await populate(runs)
        records = await runs.store.read_all()
    fold = RunsFold()
    fold.feed(records[:-3])
    first = {s.run_id: s for s in fold.summaries()}
    fold.feed(records[-3:])
    second = {s.run_id: s for s in fold.summaries()}
    moved = {int(r.stream[4:].partition("/")[0]) for r in records[-3:]}
    assert all(second[k] is first[k] for k in first if k not in moved)  # kept, not made again
    projector = Projector(strict=False)
    projector.feed(records)
    assert list(second.values()) == sorted(
        (summary_of(v) for v in projector.views()), key=lambda s: s.run_id
    )


# -- the SQLite schema: version 1 → 2 -------------------------------------------------------------

_V1_RUNS = """CREATE TABLE runs (
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
    )"""
_V1_INDEXES = (
    "CREATE INDEX runs_name_created ON runs (name, created_at)",
    "CREATE INDEX runs_state_created ON runs (state, created_at)",
    "CREATE INDEX runs_created ON runs (created_at)",
)
_COLUMNS = (
    "run_id, dialect, operation, name, state, outcome, terminal, warning, created_at, "
    "started_at, ended_at, original_run_id, root_run_id, job_version, reason"
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def make_v1(path: Path, *, runs_table: str = _V1_RUNS, columns: str = _COLUMNS) -> None:
    """Turn a current store file into what version 1 of this library wrote: the same tables,
    but ``runs`` with its ``version`` column (filled with a made-up, stale number)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        rows = db.execute(f"SELECT {_COLUMNS} FROM runs").fetchall()
        db.execute("DROP TABLE runs")
        db.execute(runs_table)
        for index in _V1_INDEXES:
            db.execute(index)
        db.executemany(
            f"INSERT INTO runs ({columns}, version) VALUES "
            f"({', '.join('?' * (columns.count(',') + 1))}, 1)",
            [row[: columns.count(",") + 1] for row in rows],
        )
        db.execute("PRAGMA user_version = 1")
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


@asynccontextmanager
async def v1_store(tmp_path: Path) -> AsyncIterator[tuple[Path, list[RunSummary]]]:
    path = tmp_path / "runs.db"
    async with lifecycle.AsyncRuns(f"sqlite:///{path}") as runs:
        await populate(runs)
        listed = await runs.list()
    make_v1(path)
    yield path, listed


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


@SQLITE_ONLY
async def test_a_read_only_open_reads_a_version_1_file_without_changing_it(
    tmp_path: Path,
) -> None:
    assert SCHEMA_VERSION == 2
    async with v1_store(tmp_path) as (path, listed):
        before = digest(path)
        async with lifecycle.AsyncRuns(f"sqlite:///{path}?mode=ro") as runs:
            assert await runs.list() == listed
            nightly = [r for r in listed if r.name == "nightly"]
            assert await runs.list(name="nightly", limit=1) == nightly[:1]
            view = await runs.get(listed[0].run_id)
            assert view.state == listed[0].state
        assert digest(path) == before
        assert user_version(path) == 1


@SQLITE_ONLY
async def test_a_writer_migrates_a_version_1_file_in_place(tmp_path: Path) -> None:
    async with v1_store(tmp_path) as (path, listed):
        fresh = tmp_path / "fresh.db"
        async with SQLiteStore(f"sqlite:///{fresh}"):
            pass
        async with lifecycle.AsyncRuns(f"sqlite:///{path}") as runs:
            assert await runs.list() == listed  # the rows kept, less their version
            run = await runs.create("domino", name="after-the-move")
            await runs.record(run.id, START_SEQUENCE)
            (row,) = await runs.list(name="after-the-move")
            assert row.state == "Running"
            assert (await rebuild_summaries(runs.store)).differed is False
        assert user_version(path) == 2
        assert schema_of(path) == schema_of(fresh)  # exactly what a new file has
        with closing(sqlite3.connect(path)) as db:
            columns = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
            assert "version" not in columns and len(columns) == 15
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        async with SQLiteStore(f"sqlite:///{path}") as store:  # opening again: nothing to do
            assert len(await store.list_runs()) == len(listed) + 1


@SQLITE_ONLY
async def test_two_writers_opening_a_version_1_file_at_once_migrate_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three writers all find version 1 before any of them migrates (a barrier holds each one
    between its first look at the file and its migration): only the first may migrate; the
    others must see, inside their own write transaction, that it is done. Each migration run
    leaves a row in a table of its own, so a second one shows — re-running the 1 → 2
    statements on a version 2 file would succeed and change nothing else."""
    writers = 3
    arrived = threading.Barrier(writers, timeout=20)
    migrate = schema._migrate

    def after_all_looked(conn: sqlite3.Connection, path: str) -> None:
        arrived.wait()
        migrate(conn, path)

    monkeypatch.setattr(schema, "_migrate", after_all_looked)
    counted = (
        *schema._MIGRATIONS[1],
        "CREATE TABLE IF NOT EXISTS migrations_run (n INTEGER)",
        "INSERT INTO migrations_run VALUES (1)",
    )
    monkeypatch.setitem(schema._MIGRATIONS, 1, counted)
    async with v1_store(tmp_path) as (path, listed):
        stores = [SQLiteStore(f"sqlite:///{path}") for _ in range(writers)]
        try:
            async with anyio.create_task_group() as tg:
                for store in stores:
                    tg.start_soon(store.__aenter__)
            for store in stores:
                assert await store.list_runs() == listed
        finally:
            for store in stores:
                await store.aclose()
        assert user_version(path) == 2
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT count(*) FROM migrations_run").fetchone() == (1,)


@SQLITE_ONLY
async def test_a_migration_that_fails_leaves_the_file_untouched(tmp_path: Path) -> None:
    """A version 1 file whose ``runs`` table lacks a column (damaged by hand): the copy fails
    inside the migration's transaction, which rolls back — the file stays as it was."""
    broken = _V1_RUNS.replace(",\n        reason TEXT", "")
    columns = _COLUMNS.removesuffix(", reason")
    path = tmp_path / "runs.db"
    async with lifecycle.AsyncRuns(f"sqlite:///{path}") as runs:
        await populate(runs)
    make_v1(path, runs_table=broken, columns=columns)
    before = digest(path)
    with pytest.raises(StoreError, match="reason"):
        async with SQLiteStore(f"sqlite:///{path}"):
            pass  # pragma: no cover
    assert digest(path) == before
    assert user_version(path) == 1


@SQLITE_ONLY
@pytest.mark.parametrize("version", [3, 99])
async def test_a_file_newer_than_version_2_is_refused_untouched(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "runs.db"
    async with SQLiteStore(f"sqlite:///{path}"):
        pass
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
    before = digest(path)
    for url in (f"sqlite:///{path}", f"sqlite:///{path}?mode=ro"):
        with pytest.raises(StoreError, match="newer than this library"):
            async with SQLiteStore(url):
                pass  # pragma: no cover
    assert digest(path) == before


# -- naive times ----------------------------------------------------------------------------------


async def test_list_runs_reads_naive_bounds_as_utc_in_every_store(make_url: str) -> None:
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        rows = await runs.list()
        created = sorted(r.created_at for r in rows if r.created_at is not None)
        start, end = created[2], created[-3]

        def naive(at: dt.datetime) -> dt.datetime:
            return at.replace(tzinfo=None)

        aware = await runs.list(start_time=start, end_time=end)
        assert 0 < len(aware) < len(rows)
        assert await runs.list(start_time=naive(start), end_time=naive(end)) == aware
        assert await runs.list(start_time=naive(start)) == await runs.list(start_time=start)
