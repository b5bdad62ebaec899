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
from collections.abc import AsyncIterator
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
from lifecycle._errors import StoreError, UnknownDialect
from lifecycle._runs import summary_of
from lifecycle._stores import RunStore, RunSummary, Write
from lifecycle._stores._rebuild import RunsFold, rebuild_summaries
from lifecycle._stores._sqlite import SQLiteStore
from lifecycle._stores._sqlite_schema import APPLICATION_ID, SCHEMA_VERSION
from lifecycle._views import Projector

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
    projector.feed(await store.read_all())
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


async def test_a_run_of_an_unknown_dialect_stops_the_rebuild_and_changes_nothing(
    make_url: str,
) -> None:
    async with lifecycle.AsyncRuns(make_url) as runs:
        await populate(runs)
        original = await runs.list()
        await runs.store.append(
            [Write(stream="run-50", events=(ev.Requested(dialect="no-such-dialect"),))]
        )
        with pytest.raises(UnknownDialect, match="register it in this process first"):
            await rebuild_summaries(runs.store)
        assert await runs.list() == original


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
    tmp_path: Path,
) -> None:
    async with v1_store(tmp_path) as (path, listed):
        stores = [SQLiteStore(f"sqlite:///{path}") for _ in range(3)]
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.__aenter__)
        try:
            for store in stores:
                assert await store.list_runs() == listed
        finally:
            for store in stores:
                await store.aclose()
        assert user_version(path) == 2


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
