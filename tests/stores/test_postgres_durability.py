"""The PostgreSQL store across schema versions, big blobs, and a server that goes away
(issue 14): a version-1 database migrated in place; blobs as large objects above
``LARGE_BLOB``; a server restarted under a follower and a writer, and one killed (``-m
immediate``, as a crash) in the middle of appends — each append either committed once or
raised ``StoreError``, and its retry with the same event ids is idempotent. Each test that
stops its server has a cluster of its own."""

from __future__ import annotations

import os

import anyio
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._stores import Write, open_store
from lifecycle._stores._postgres import BLOB_CHUNK, LARGE_BLOB, SCHEMA_VERSION
from tests._postgres import ENV, cluster, create_database

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.anyio

# The tables as version 1 of the store made them (lifecycle 0.1.0.dev0 at afb9665), verbatim.
V1_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS lifecycle_blobs (key text PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS lifecycle_leases (
    run_id bigint PRIMARY KEY, owner text NOT NULL, expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS lifecycle_counters (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO lifecycle_counters VALUES ('run_ids', 0) ON CONFLICT DO NOTHING;
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg runs on asyncio only


async def test_a_version_1_database_is_migrated_in_place(postgres_server: str) -> None:
    url = await create_database(postgres_server, "v1")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(V1_SCHEMA)
        await conn.execute("INSERT INTO lifecycle_meta VALUES ('schema', '1')")
        fact = ev.Requested(dialect="datatailr", name="old")
        await conn.execute(
            "INSERT INTO lifecycle_events VALUES (1, 'run-1', 1, 'e1', now(), $1)",
            ev.encode_fact(fact),
        )
        await conn.execute("INSERT INTO lifecycle_blobs VALUES ('old/result', $1)", b"kept")
    finally:
        await conn.close()
    async with open_store(url) as store:
        assert store.migrated_from == "1"  # type: ignore[attr-defined]
        assert [r.event for r in await store.read(["run-1"])] == [fact]
        assert await store.get_blob("old/result") == b"kept"
        await store.put_blob("new/result", b"x" * (LARGE_BLOB + 1))
        assert len(await store.get_blob("new/result") or b"") == LARGE_BLOB + 1
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT value FROM lifecycle_meta") == SCHEMA_VERSION
    finally:
        await conn.close()
    async with open_store(url) as store:  # already current: nothing to migrate
        assert store.migrated_from is None  # type: ignore[attr-defined]


async def test_big_blobs_are_large_objects_and_overwrites_leave_none_behind(
    postgres_server: str,
) -> None:
    url = await create_database(postgres_server)
    big = os.urandom(LARGE_BLOB + BLOB_CHUNK + 17)  # more than one chunk, and a ragged end
    async with open_store(url) as store:
        await store.put_blob("r/big", big)
        assert await store.get_blob("r/big") == big
        await store.put_blob("r/big", big[::-1])  # overwritten by another large object
        assert await store.get_blob("r/big") == big[::-1]
        await store.put_blob("r/big", b"small now")  # and by a bytea
        assert await store.get_blob("r/big") == b"small now"
        await store.put_blob("r/exact", big[:LARGE_BLOB])  # the threshold itself: bytea
        assert await store.get_blob("r/exact") == big[:LARGE_BLOB]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata") == 0
        assert await conn.fetchval("SELECT count(*) FROM lifecycle_blobs WHERE lo IS NOT NULL") == 0
    finally:
        await conn.close()


def _write(i: int) -> Write:
    return Write(
        stream=f"s-{i % 7}",
        events=(ev.LogRecorded(text=f"line {i}"),),
        event_ids=(f"e-{i}",),
    )


async def _append_until_done(store: lifecycle.RunStore, i: int) -> int:
    """Append write ``i``, retrying (same event ids) through ``StoreError`` until the server is
    back; how many attempts failed."""
    failed = 0
    with anyio.fail_after(60):
        while True:
            try:
                await store.append([_write(i)])
                return failed
            except lifecycle.StoreError:
                failed += 1
                await anyio.sleep(0.2)


@pytest.mark.skipif(
    bool(os.environ.get(ENV)), reason="stops its server: needs a cluster of its own"
)
async def test_a_server_restart_under_a_follower_and_a_writer() -> None:
    with cluster() as server:
        url = await create_database(server.dsn)
        # poll=60: the follower below sees the writes after the restart within its time limit
        # only if the store listens again (the notification, not the fallback poll)
        async with lifecycle.AsyncRuns(f"{url}?poll=60", poll_interval=60) as runs:
            run = await runs.create("datatailr", name="survivor", containers=["t"])
            seen: list[int] = []

            async def follow() -> None:
                async for record in runs.follow(run.id):
                    seen.append(record.position)

            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                await runs.record(run.id, ev.LogRecorded(text="before"), container="t")
                await anyio.to_thread.run_sync(server.restart)
                ids = ["after-1"]
                for _ in range(100):  # the pool's connections died with the server
                    try:
                        await runs.record(
                            run.id, ev.LogRecorded(text="after"), container="t", event_ids=ids
                        )
                        break
                    except lifecycle.StoreError:
                        await anyio.sleep(0.1)
                again = await runs.record(
                    run.id, ev.LogRecorded(text="after"), container="t", event_ids=ids
                )  # the same ids: the original records, nothing written
                await runs.record(run.id, ev.Stopped(reason="done"), container="t")
                await runs.record(run.id, ev.Stopped(reason="done"))
                with anyio.fail_after(20):
                    while (await runs.get(run.id)).state != "Stopped" or len(seen) < 5:  # noqa: ASYNC110
                        await anyio.sleep(0.1)  # the follower ends with the run
            history = await runs.history(run.id)
            texts = [r.event.text for r in history if isinstance(r.event, ev.LogRecorded)]
            assert texts == ["before", "after"]
            assert again[0].position == next(r for r in history if r.event_id == "after-1").position
            assert seen == [r.position for r in history]  # every position once, in order


@pytest.mark.skipif(
    bool(os.environ.get(ENV)), reason="stops its server: needs a cluster of its own"
)
async def test_a_server_crash_in_the_middle_of_appends_loses_and_repeats_nothing() -> None:
    """Writers append while the server is killed (``-m immediate``) and started again: an
    append either returned (committed) or raised ``StoreError``; retried with its event ids
    until it returns, every write is in the log exactly once, versions dense, positions
    gap-free."""
    with cluster() as server:
        url = await create_database(server.dsn)
        async with open_store(f"{url}?timeout=5") as store:
            failures: list[int] = []
            written: list[int] = []
            done = anyio.Event()

            async def writer(first: int) -> None:
                i = first
                while not done.is_set():
                    failures.append(await _append_until_done(store, i))
                    written.append(i)
                    i += 1

            async with anyio.create_task_group() as tg:
                for w in range(4):
                    tg.start_soon(writer, w * 100_000)
                await anyio.sleep(0.3)
                await anyio.to_thread.run_sync(server.stop)
                await anyio.sleep(0.5)
                await anyio.to_thread.run_sync(server.start)
                await anyio.sleep(0.5)
                done.set()
            for i in written:  # a retry of everything, acknowledged or not: all idempotent
                await store.append([_write(i)])
            records = await store.read_all()
    assert sum(failures) > 0, "the crash hit no append: the test proved nothing"
    ids = [r.event_id for r in records]
    assert sorted(ids) == sorted(f"e-{i}" for i in written)
    assert [r.position for r in records] == list(range(1, len(records) + 1))
    for stream in {r.stream for r in records}:
        versions = [r.version for r in records if r.stream == stream]
        assert versions == list(range(1, len(versions) + 1))
