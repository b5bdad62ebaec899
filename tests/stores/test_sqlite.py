"""What is particular to the ``sqlite:///`` store: group commit, durability, schema checks,
read-only and full disks, upcasting stored rows, rebuilding the read model, and other processes.

The generic guarantees (ordering, versions, idempotency, atomicity, crash safety) are proved for
every backend by ``lifecycle.testing.check_event_store``; they are not repeated here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._errors import (
    ConcurrencyError,
    CorruptLog,
    IdempotencyConflict,
    LifecycleError,
    StoreError,
)
from lifecycle._stores import MemoryStore, RunStore, RunSummary, Write, open_store
from lifecycle._stores._rebuild import rebuild_summaries
from lifecycle._stores._sqlite import SQLiteStore
from lifecycle._stores._sqlite_schema import APPLICATION_ID, SCHEMA_VERSION

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # aiosqlite runs on asyncio only, so these tests do too (the conftest runs both).
    return "asyncio"


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def log(text: str = "x") -> ev.LogRecorded:
    return ev.LogRecorded(text=text)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


class Statements:
    """Every SQL statement the store's writer connection runs (SQLite's trace hook)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def commits(self) -> int:
        return sum(1 for s in self.seen if s == "COMMIT")


async def trace(store: SQLiteStore) -> Statements:
    statements = Statements()
    assert store._writer is not None
    await store._writer.set_trace_callback(statements.seen.append)
    return statements


async def append_or_error(
    store: RunStore, writes: list[Write], results: dict[str, Any], key: str
) -> None:
    try:
        results[key] = await store.append(writes)
    except LifecycleError as exc:
        results[key] = exc


# -- opening --------------------------------------------------------------------------------------


async def test_urls_and_options(tmp_path: Path) -> None:
    store = open_store(f"{url_of(tmp_path / 'a.db')}?durability=durable")
    assert isinstance(store, SQLiteStore)
    assert (store.path, store.durability) == (f"{tmp_path}/a.db", "durable")
    assert SQLiteStore("sqlite:///relative/runs.db").path == "relative/runs.db"
    assert SQLiteStore("sqlite:///r.db?mode=ro").readonly
    for bad in ("sqlite://", "sqlite:///:memory:", "sqlite:///x.db?color=red"):
        with pytest.raises(StoreError):
            SQLiteStore(bad)
    with pytest.raises(StoreError, match="durability"):
        SQLiteStore("sqlite:///x.db", durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="not open"):
        await SQLiteStore(url_of(tmp_path / "b.db")).append([Write(stream="s", events=(log(),))])


@pytest.mark.parametrize(("durability", "synchronous"), [("fast", 1), ("durable", 2)])
async def test_durability_is_the_synchronous_pragma(
    tmp_path: Path, durability: Any, synchronous: int
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db"), durability=durability) as store:
        assert store._writer is not None
        async with store._writer.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone()) == (synchronous,)  # NORMAL, FULL
        async with store._writer.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
    with closing(sqlite3.connect(tmp_path / "runs.db")) as db:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_two_stores_may_create_the_same_new_file(tmp_path: Path) -> None:
    """Creation happens inside BEGIN IMMEDIATE, re-checked: the second opener finds it made."""
    url = url_of(tmp_path / "runs.db")
    async with SQLiteStore(url) as a, SQLiteStore(url) as b:
        await a.append([Write(stream="s", events=(log(),), expected_version=0)])
        with pytest.raises(ConcurrencyError):
            await b.append([Write(stream="s", events=(log(),), expected_version=0)])


async def test_what_the_writer_remembers_is_forgotten_when_another_connection_writes(
    tmp_path: Path,
) -> None:
    """The writer keeps stream versions and the last position between its transactions, and
    must drop them as soon as another connection (process) commits."""
    url = url_of(tmp_path / "runs.db")
    async with SQLiteStore(url) as a, SQLiteStore(url) as b:
        await a.append([Write(stream="s", events=(log(),), expected_version=0)])
        await b.append([Write(stream="s", events=(log(),), expected_version=1)])
        await b.append([Write(stream="t", events=(log(),))])
        with pytest.raises(ConcurrencyError, match="at version 2"):
            await a.append([Write(stream="s", events=(log(),), expected_version=1)])
        (record,) = await a.append([Write(stream="s", events=(log(),), expected_version=2)])
        assert (record.version, record.position) == (3, 4)
        (record,) = await a.append([Write(stream="u", events=(log(),))])
        assert record.position == 5
        assert [(r.stream, r.version) for r in await b.read_all()] == [
            ("s", 1),
            ("s", 2),
            ("t", 1),
            ("s", 3),
            ("u", 1),
        ]


def _foreign(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine, not yours')")
        db.commit()


def _other_application(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA application_id = 42")
        db.commit()


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"name,state\nnightly,Running\n" * 100)


def _newer(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE future_things (x)")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_foreign, "not a lifecycle store"),
        (_other_application, "not a lifecycle store"),
        (_not_sqlite, "not a SQLite database"),
        (_newer, "newer than this library"),
    ],
    ids=["foreign-tables", "other-application-id", "not-sqlite", "newer-schema"],
)
async def test_refuses_a_file_that_is_not_ours_and_leaves_it_alone(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = tmp_path / "runs.db"
    make(path)
    before = digest(path)
    with pytest.raises(StoreError, match=message):
        async with SQLiteStore(url_of(path)):
            pass  # pragma: no cover
    assert digest(path) == before
    assert names_in(tmp_path) == ["runs.db"]


# -- the group commit -----------------------------------------------------------------------------


async def test_concurrent_appends_share_one_transaction(tmp_path: Path) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        await store.append([Write(stream="warm-up", events=(log(),))])
        statements = await trace(store)
        async with anyio.create_task_group() as tg:
            for i in range(100):
                write = Write(stream=f"run-{i}", events=(log(),), expected_version=0)
                tg.start_soon(store.append, [write])
        # 100 appends acknowledged, one transaction (two at most if the writer thread
        # happened to take the queue while the tasks were still queueing)
        assert 1 <= statements.commits() <= 2, statements.seen
        assert statements.seen.count("BEGIN IMMEDIATE") == statements.commits()
        records = await store.read_all(after=1)
        assert len(records) == 100 and {r.version for r in records} == {1}
        assert [r.position for r in records] == list(range(2, 102))


async def test_one_failing_append_leaves_its_neighbours_alone(tmp_path: Path) -> None:
    """Appends that lose (stale version, partial retry, duplicate ids) in the middle of a
    batch write nothing; the others of the batch commit; the messages are the memory store's."""
    errors: dict[str, dict[str, Any]] = {}
    for store in (MemoryStore(), SQLiteStore(url_of(tmp_path / "runs.db"))):
        async with store:
            await store.append([Write(stream="taken", events=(log(),), expected_version=0)])
            await store.append([Write(stream="retried", events=(log(),), event_ids=("r1",))])
            statements = await trace(store) if isinstance(store, SQLiteStore) else None
            results: dict[str, Any] = {}
            batch = {
                "first": [Write(stream="a", events=(log(),), expected_version=0)],
                "stale": [
                    Write(stream="b", events=(log(),), expected_version=0),
                    Write(stream="taken", events=(log(),), expected_version=0),
                ],
                "partial": [Write(stream="retried", events=(log(), log()), event_ids=("r1", "r2"))],
                "twice": [Write(stream="c", events=(log(), log()), event_ids=("d", "d"))],
                "second": [Write(stream="a", events=(log("2"),), expected_version=1)],
                "loser": [Write(stream="a", events=(log(),), expected_version=0)],
                "retry": [Write(stream="e", events=(log(),), event_ids=("e1",))],
                "retry-again": [Write(stream="e", events=(log(),), event_ids=("e1",))],
            }
            async with anyio.create_task_group() as tg:
                for key, writes in batch.items():
                    tg.start_soon(append_or_error, store, writes, results, key)
            if statements is not None:
                assert statements.commits() == 1
            assert [(r.stream, r.version) for r in await store.read_all(after=2)] == [
                ("a", 1),
                ("a", 2),
                ("e", 1),
            ]
            assert results["retry"] == results["retry-again"]
            assert type(results["stale"]) is ConcurrencyError
            assert type(results["loser"]) is ConcurrencyError
            assert type(results["partial"]) is IdempotencyConflict
            assert type(results["twice"]) is IdempotencyConflict
            errors[type(store).__name__] = {
                k: str(v) for k, v in results.items() if isinstance(v, Exception)
            }
    assert errors["SQLiteStore"] == errors["MemoryStore"]


async def test_a_cancelled_append_does_not_wedge_the_writer(tmp_path: Path) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await store.append([Write(stream="gone", events=(log(),))])
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(store.append, [Write(stream=f"s{i}", events=(log(),))])
            tg.cancel_scope.cancel()  # every one cancelled while queued or in flight
        with anyio.fail_after(5):
            await store.append([Write(stream="after", events=(log(),))])
        streams = [r.stream for r in await store.read_all()]
        assert streams[-1] == "after" and "gone" not in streams
        assert len(streams) == len(set(streams))


async def test_when_the_appender_that_was_to_send_the_batch_is_cancelled_another_sends_it(
    tmp_path: Path,
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        scope = anyio.CancelScope()
        done: list[str] = []

        async def first() -> None:
            with scope:  # queues first, so it is the one to send the batch; then cancelled
                await store.append([Write(stream="cancelled", events=(log(),))])
                done.append("cancelled")  # pragma: no cover

        async def then(name: str) -> None:
            scope.cancel()
            await store.append([Write(stream=name, events=(log(),))])
            done.append(name)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(then, "b")
                tg.start_soon(then, "c")
        assert sorted(done) == ["b", "c"]
        assert sorted(r.stream for r in await store.read_all()) == ["b", "c"]


# -- bad disks ------------------------------------------------------------------------------------


async def test_a_full_disk_fails_only_the_append_that_does_not_fit(tmp_path: Path) -> None:
    """``max_page_count`` makes SQLite report SQLITE_FULL, as a full disk does. The batch is
    replayed with one savepoint per append: the big one fails whole (both its writes), its
    neighbours commit."""
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await store.append([Write(stream="warm-up", events=(log(),))])
        assert store._writer is not None
        async with store._writer.execute("PRAGMA page_count") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        await store._writer.execute(f"PRAGMA max_page_count = {row[0] + 8}")
        big = [
            Write(stream="big-a", events=(log("small part of a big append"),)),
            Write(stream="big-b", events=(log("x" * 200_000),)),
        ]
        results: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                append_or_error, store, [Write(stream="s1", events=(log(),))], results, "1"
            )
            tg.start_soon(append_or_error, store, big, results, "big")
            tg.start_soon(
                append_or_error, store, [Write(stream="s2", events=(log(),))], results, "2"
            )
        error = results["big"]
        assert isinstance(error, StoreError), error
        assert "full" in str(error) and "nothing was written" in str(error)
        assert isinstance(error.__cause__, sqlite3.Error)
        assert error.__cause__.sqlite_errorname == "SQLITE_FULL"
        assert isinstance(results["1"], list) and isinstance(results["2"], list)
        assert [r.stream for r in await store.read_all()] == ["warm-up", "s1", "s2"]
        # room again: the same append goes through
        await store._writer.execute("PRAGMA max_page_count = 1073741823")
        assert len(await store.append(big)) == 2
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM streams").fetchone() == (5,)


async def test_readonly_mode_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await store.append([Write(stream="s", events=(log(), log()))])
        await store.put_blob("k", b"v")
    before = digest(path)
    async with SQLiteStore(f"{url_of(path)}?mode=ro") as store:
        assert len(await store.read_all()) == 2
        assert await store.get_blob("k") == b"v"
        for write in (
            store.append([Write(stream="s", events=(log(),))]),
            store.next_run_id(),
            store.put_blob("k", b"w"),
            store.acquire_lease(1, "me", 10),
            store.replace_summaries([]),
        ):
            with pytest.raises(StoreError, match="read-only"):
                await write
    assert digest(path) == before
    with pytest.raises(StoreError, match="does not exist"):
        async with SQLiteStore(f"{url_of(tmp_path / 'missing.db')}?mode=ro"):
            pass  # pragma: no cover


# -- what is stored -------------------------------------------------------------------------------


async def test_an_old_shape_row_replays_through_an_upcaster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written by an older version (``ResultStored`` when ``key`` was called ``name``),
    put there by hand with sqlite3: unreadable until an upcaster maps it, then it replays."""
    monkeypatch.setattr(ev, "_UPCASTERS", {})  # restored after the test
    path = tmp_path / "runs.db"
    async with lifecycle.AsyncRuns(url_of(path)) as runs:
        run = await runs.create("qualytics", operation="profile", containers=["orders"])
        await runs.record(run.id, ev.ExecutionStarted())
        await runs.record(run.id, START_SEQUENCE, container="orders")
        container = f"run-{run.id}/orders"
    old = msgspec.msgpack.encode({"type": "ResultStored", "name": "orders.result", "size": 3})
    with closing(sqlite3.connect(path)) as db:
        (stream_id,) = db.execute("SELECT id FROM streams WHERE name = ?", (container,)).fetchone()
        (position,) = db.execute("SELECT MAX(position) FROM events").fetchone()
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            (position + 1, stream_id, 1 + len(START_SEQUENCE) + 1, "old-1", 0, old),
        )
        db.commit()
    async with lifecycle.AsyncRuns(url_of(path)) as runs:
        with pytest.raises(CorruptLog, match="old-1") as caught:
            await runs.get(run.id)
        assert caught.value.line == position + 1

    def key_was_name(raw: dict[str, Any]) -> dict[str, Any]:
        raw["key"] = raw.pop("name")
        return raw

    ev.register_upcaster("ResultStored", key_was_name)
    async with lifecycle.AsyncRuns(url_of(path)) as runs:
        view = await runs.get(run.id)
        assert view.containers["orders"].result == ev.ResultStored(key="orders.result", size=3)
        (last,) = await runs.store.read_all(after=position)
        assert last.recorded_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def test_a_row_that_cannot_be_decoded_is_a_corrupt_log(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await store.append([Write(stream="s", events=(log(), log()))])
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE events SET data = x'c1' WHERE position = 2")
        db.commit()
    async with SQLiteStore(url_of(path)) as store:
        assert len(await store.read_all(limit=1)) == 1
        with pytest.raises(CorruptLog, match=r"position 2"):
            await store.read(["s"])


async def test_times_are_utc_microseconds(tmp_path: Path) -> None:
    naive = dt.datetime(2026, 5, 1, 12, 30, 0, 123456)
    aware = dt.datetime(2026, 5, 1, 14, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        for at in (naive, aware):
            (record,) = await store.append([Write(stream="s", events=(log(),))], at=at)
            (stored,) = await store.read(["s"], after=record.position - 1)
            assert stored.recorded_at == naive.replace(tzinfo=dt.UTC) == record.recorded_at
            assert stored.recorded_at.tzinfo is dt.UTC


# -- the read model -------------------------------------------------------------------------------


async def _populate(runs: lifecycle.AsyncRuns) -> None:
    """Runs of every dialect that went through most of what the service does."""
    a = await runs.create("qualytics", operation="profile", containers=["o", "c"], name="nightly")
    await runs.record(a.id, ev.ExecutionStarted())
    await runs.record(a.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="o")
    await runs.record(a.id, [ev.ExecutionStarted(), ev.ExecutionFailed(error="x")], container="c")
    await runs.record(a.id, ev.ExecutionSucceeded())  # ends Success with the Warning
    b = await runs.create("domino", name="train")
    await runs.record(b.id, START_SEQUENCE)
    await runs.abort(b.id)
    c = await runs.rerun(b.id, job_version=2)
    await runs.record(c.id, [*START_SEQUENCE, ev.OutOfMemory(limit_bytes=1024)])
    d = await runs.create("datatailr", name="numbers", containers=["t1"])
    await runs.record(d.id, ev.ResourcesRequested())
    await runs.create("qualytics", operation="scan", name="nightly")


async def test_rebuilding_the_read_model_gives_the_same_rows(tmp_path: Path) -> None:
    async with lifecycle.AsyncRuns(url_of(tmp_path / "runs.db")) as runs:
        await _populate(runs)
        incremental = await runs.list()
        assert [s.state for s in incremental] == [
            "Queued",
            "Pending",
            "Failed",
            "Stopped",
            "Success",
        ]
        assert (
            incremental[-1].warning and incremental[2].reason == "out of memory (limit 1024 bytes)"
        )
        await runs.store.replace_summaries([])  # lose it
        assert await runs.list() == []
        report = await rebuild_summaries(runs.store)
        assert (report.runs, report.added, report.diverged) == (5, [1, 2, 3, 4, 5], [])
        assert await runs.list() == incremental


async def test_rebuild_works_on_the_memory_store_too() -> None:
    async with lifecycle.AsyncRuns("memory://") as runs:
        await _populate(runs)
        incremental = await runs.list()
        report = await rebuild_summaries(runs.store)
        assert (report.runs, report.unchanged, report.differed) == (5, 5, False)
        assert await runs.list() == incremental


def _summary(run_id: int, name: str, state: str, dialect: str, minute: int) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        dialect=dialect,
        operation="run",
        name=name,
        state=state,
        outcome=None,
        terminal=False,
        warning=False,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute),
    )


async def test_list_runs_filters_newest_first_through_indexes(tmp_path: Path) -> None:
    rows = [
        _summary(
            i,
            "nightly" if i % 2 else "hourly",
            "Running" if i % 3 else "Success",
            "qualytics" if i % 5 else "domino",
            minute=i,
        )
        for i in range(1, 61)
    ]
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store, MemoryStore() as memory:
        await store.replace_summaries(rows)
        await memory.replace_summaries(rows)
        start = dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC)
        end = dt.datetime(2026, 1, 1, 0, 40, tzinfo=dt.UTC)
        queries: list[dict[str, Any]] = [
            {},
            {"name": "nightly"},
            {"name": "nightly", "start_time": start, "end_time": end},
            {"name": "nightly", "start_time": start, "limit": 3},
            {"state": "Success", "end_time": end},
            {"dialect": "domino", "state": "Running"},
        ]
        for query in queries:
            got = await store.list_runs(**query)
            assert got == await memory.list_runs(**query), query
            assert [s.run_id for s in got] == sorted((s.run_id for s in got), reverse=True)
        assert [s.run_id for s in await store.list_runs(name="nightly", limit=2)] == [59, 57]
        naive = await store.list_runs(
            start_time=start.replace(tzinfo=None), end_time=end.replace(tzinfo=None)
        )
        assert naive == await store.list_runs(start_time=start, end_time=end)  # naive is UTC
        assert store._reader is not None
        plan = await store._reader.execute_fetchall(
            "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE name = ? AND created_at >= ? "
            "AND created_at <= ? ORDER BY run_id DESC",
            ("nightly", 0, 1),
        )
        assert any("runs_name_created" in str(step) for step in plan), plan


# -- other connections and processes --------------------------------------------------------------


async def test_wait_wakes_at_once_for_this_stores_appends(tmp_path: Path) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db"), poll_interval=30) as store:
        await store.append([Write(stream="s", events=(log(),))])
        assert await store.wait(0) == 1
        heads: list[int] = []
        async with anyio.create_task_group() as tg:

            async def waiter() -> None:
                heads.append(await store.wait(1))

            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            started = time.monotonic()
            await store.append([Write(stream="s", events=(log(),))])
        assert heads == [2] and time.monotonic() - started < 1  # not the 30 s poll


async def test_wait_sees_another_connections_appends_by_polling(tmp_path: Path) -> None:
    url = url_of(tmp_path / "runs.db")
    async with SQLiteStore(url, poll_interval=0.02) as watcher, SQLiteStore(url) as writer:

        async def append_later() -> None:
            await anyio.sleep(0.05)
            await writer.append([Write(stream="s", events=(log(),))])

        async with anyio.create_task_group() as tg:
            tg.start_soon(append_later)
            with anyio.fail_after(2):
                assert await watcher.wait(0) == 1


_PYTHON_PRELUDE = """
import asyncio, json, os, sys
from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, StoreError
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore
url = sys.argv[1]
"""


def run_python(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    code = _PYTHON_PRELUDE + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_python(script: str, *args: str) -> subprocess.Popen[str]:
    code = _PYTHON_PRELUDE + textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_wait_and_follow_see_another_process(tmp_path: Path) -> None:
    url = url_of(tmp_path / "runs.db")
    async with lifecycle.AsyncRuns(url, poll_interval=0.1) as runs:
        run = await runs.create("domino", name="watched")
        child = start_python(
            f"""
            import time
            import lifecycle
            from lifecycle._canonical import START_SEQUENCE
            async def main():
                async with lifecycle.AsyncRuns(url) as runs:
                    for fact in [*START_SEQUENCE, ev.ExecutionSucceeded()]:
                        time.sleep(0.1)
                        await runs.record({run.id}, fact)
            asyncio.run(main())
            """,
            url,
        )
        try:
            with anyio.fail_after(10):
                seen = [type(r.event).__name__ async for r in runs.follow(run.id)]
        finally:
            _, err = child.communicate(timeout=20)
        assert child.returncode == 0, err
        assert seen == [
            "Requested",
            *(type(f).__name__ for f in START_SEQUENCE),
            "ExecutionSucceeded",
        ]


@pytest.mark.slow
async def test_processes_append_to_one_file(tmp_path: Path) -> None:
    """Four processes at once: each takes run ids, appends to its own stream, and competes for
    one shared stream with expected versions (the losers get ConcurrencyError)."""
    url = url_of(tmp_path / "runs.db")
    async with SQLiteStore(url):
        pass  # create the file first, so the workers race on appends, not on creation
    worker = """
    me = sys.argv[2]
    async def main():
        async with SQLiteStore(url) as s:
            ids, wins, losses = [], 0, 0
            for k in range(40):
                ids.append(await s.next_run_id())
                shared = await s.read(["shared"])
                try:
                    await s.append([Write(stream="shared", events=(ev.LogRecorded(text=me),),
                                          expected_version=len(shared))])
                    wins += 1
                except ConcurrencyError:
                    losses += 1
                await s.append([Write(stream="own-" + me, events=(ev.LogRecorded(),),
                                      expected_version=k)])
            print(json.dumps({"ids": ids, "wins": wins, "losses": losses}))
    asyncio.run(main())
    """
    children = [start_python(worker, url, str(i)) for i in range(4)]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        reports.append(json.loads(out))
    ids = [i for r in reports for i in r["ids"]]
    assert sorted(ids) == list(range(1, 161))  # every run id handed out once
    async with SQLiteStore(url) as store:
        records = await store.read_all()
        positions = [r.position for r in records]
        assert positions == list(range(1, len(records) + 1))
        shared = [r for r in records if r.stream == "shared"]
        assert [r.version for r in shared] == list(range(1, len(shared) + 1))
        assert len(shared) == sum(r["wins"] for r in reports)
        assert all(r["wins"] + r["losses"] == 40 for r in reports)
        for i in range(4):
            own = [r.version for r in records if r.stream == f"own-{i}"]
            assert own == list(range(1, 41))


@pytest.fixture
def world_writable_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lifecycle-ro-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to drop to an unprivileged user")
async def test_a_read_only_file_refuses_writes_and_is_not_touched(
    world_writable_dir: Path,
) -> None:
    """The file is mode 0444. Root ignores that (CAP_DAC_OVERRIDE), so the writer is a child
    process that drops to uid/gid 65534 (nobody) once its imports are done."""
    writable, sealed = world_writable_dir / "writable-dir", world_writable_dir / "sealed-dir"
    for directory in (writable, sealed):
        directory.mkdir()
        async with SQLiteStore(url_of(directory / "runs.db")) as store:
            await store.append([Write(stream="s", events=(log(), log()))])
        (directory / "runs.db").chmod(0o444)
    writable.chmod(0o777)  # SQLite can make its -wal/-shm files here, not write the database
    sealed.chmod(0o555)  # not even those
    before = {d.name: digest(d / "runs.db") for d in (writable, sealed)}
    result = run_python(
        """
        import tempfile
        async def warm_up():  # every lazy import done while root can still read /root
            async with SQLiteStore("sqlite:///" + tempfile.mkdtemp() + "/warm.db") as s:
                await s.append([Write(stream="s", events=(ev.LogRecorded(),))])
                await s.read_all()
        asyncio.run(warm_up())
        os.setgid(65534)
        os.setuid(65534)
        async def attempt(path):
            out = {}
            try:
                async with SQLiteStore("sqlite:///" + path) as s:
                    out["read"] = len(await s.read_all())
                    await s.append([Write(stream="s", events=(ev.LogRecorded(),))])
                    out["appended"] = True
            except StoreError as exc:
                out["error"] = str(exc)
                out["cause"] = type(exc.__cause__).__name__
            return out
        async def main():
            print(json.dumps({p: await attempt(p) for p in sys.argv[2:]}))
        asyncio.run(main())
        """,
        "-",
        str(writable / "runs.db"),
        str(sealed / "runs.db"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    in_writable, in_sealed = report[str(writable / "runs.db")], report[str(sealed / "runs.db")]
    # readable; the append fails with the read-only hint, the cause chained
    assert in_writable["read"] == 2 and "appended" not in in_writable, in_writable
    assert "read-only" in in_writable["error"] and in_writable["cause"] == "OperationalError"
    # WAL needs its -shm file beside the database: with none allowed, it cannot even be read
    assert "appended" not in in_sealed and in_sealed["cause"] == "OperationalError", in_sealed
    assert {d.name: digest(d / "runs.db") for d in (writable, sealed)} == before


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_really_full_disk_keeps_every_acknowledged_append_whole(tmp_path: Path) -> None:
    """A 1 MiB tmpfs, mounted in a private mount namespace: append until the disk is full, then
    reopen and check that every acknowledged append is there and no other one is, even in part.
    Skipped where mounting is not allowed (it needs CAP_SYS_ADMIN)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    script = _PYTHON_PRELUDE + textwrap.dedent(
        """
        async def fill():
            acked, failed = [], []
            async with SQLiteStore(url) as s:
                for k in range(10_000):
                    writes = [Write(stream=f"run-{k}", events=(ev.LogRecorded(text="x" * 3000),)),
                              Write(stream=f"run-{k}/c", events=(ev.LogRecorded(),) * 3)]
                    try:
                        await s.append(writes)
                        acked.append(k)
                    except StoreError as exc:
                        failed.append(str(exc))
                        if len(failed) == 5:
                            break
            async with SQLiteStore(url) as s:
                records = await s.read_all()
            streams = {}
            for r in records:
                streams.setdefault(r.stream, []).append(r.version)
            whole = all(streams.get(f"run-{k}") == [1] and streams.get(f"run-{k}/c") == [1, 2, 3]
                        for k in acked)
            print(json.dumps({"acked": len(acked), "streams": len(streams), "whole": whole,
                              "failed": failed}))
        asyncio.run(fill())
        """
    )
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" -c "$3" "sqlite:///$1/runs.db"',
            "-",
            str(mount),
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "mount" in result.stderr and "runs.db" not in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"], "the disk never filled"
    assert all("full" in f and "nothing was written" in f for f in report["failed"]), report
    assert report["acked"] > 10 and report["whole"], report
    assert report["streams"] == 2 * report["acked"]  # nothing of a failed append was kept
