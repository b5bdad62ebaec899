"""The PostgreSQL store (issue 14) on a real server: the conformance suite every store passes,
each check on a database of its own (``CREATE DATABASE``). asyncpg runs on asyncio only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from lifecycle.testing import PROCESS_CHECKS, STORE_CHECKS, StoreCheck
from tests._postgres import create_database

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.anyio

TWO_ENGINES = Path(__file__).resolve().parents[2] / "examples" / "two_engines.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg runs on asyncio only


Databases = Callable[[], Awaitable[str]]


@pytest.fixture
def fresh_databases(postgres_server: str) -> Databases:
    """A factory of URLs of new, empty databases on the test server (~60 ms each; the whole
    cluster is removed at the end of the session)."""

    return lambda: create_database(postgres_server)


@pytest.mark.parametrize(("name", "check"), STORE_CHECKS, ids=[n for n, _ in STORE_CHECKS])
async def test_postgres(name: str, check: StoreCheck, fresh_databases: Databases) -> None:
    await check(fresh_databases)


@pytest.mark.parametrize(("name", "check"), PROCESS_CHECKS, ids=[n for n, _ in PROCESS_CHECKS])
async def test_postgres_processes(name: str, check: StoreCheck, fresh_databases: Databases) -> None:
    await check(fresh_databases)


async def test_postgres_model(fresh_databases: Databases) -> None:
    """The Hypothesis model test of the suite (random appends, retries, reads)."""
    from lifecycle.testing._store_machine import check_store_model

    await check_store_model(fresh_databases)


async def test_a_database_another_version_wrote_is_refused(fresh_databases: Databases) -> None:
    import lifecycle

    url = await fresh_databases()
    async with lifecycle.AsyncRuns(url):
        pass  # creates the schema
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE lifecycle_meta SET value = '999' WHERE key = 'schema'")
    finally:
        await conn.close()
    with pytest.raises(lifecycle.StoreError, match="another version of lifecycle"):
        async with lifecycle.AsyncRuns(url):
            pass


async def test_the_run_service_and_options_in_the_url(fresh_databases: Databases) -> None:
    import lifecycle
    from lifecycle import events as ev

    url = await fresh_databases() + "?pool_size=3&statement_cache_size=0&poll=0.2"
    async with lifecycle.AsyncRuns(url) as runs:
        assert runs.store.pool_size == 3  # type: ignore[attr-defined]
        run = await runs.create("datatailr", name="pg", containers=["a"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "failed", container="a", error="x")
        view = await runs.finish(run.id)
        assert view.state == "Failed"
        assert [s.state for s in await runs.list(name="pg")] == ["Failed"]
        assert isinstance((await runs.history(run.id))[0].event, ev.Requested)
    # other query parameters are asyncpg's: server settings, checked by the server
    with pytest.raises(lifecycle.StoreError, match='unrecognized configuration parameter "pool"'):
        async with lifecycle.AsyncRuns(url + "&pool=3"):
            pass
    with pytest.raises(lifecycle.StoreError, match="unknown PostgreSQL store options"):
        lifecycle.open_store(url, pool=3)


WRITER = """
import sys, anyio
from lifecycle._stores import open_store, Write
from lifecycle import events as ev

async def main(url, name, count):
    async with open_store(url) as store:
        for i in range(count):
            fact = ev.LogRecorded(text=str(i))
            await store.append([Write(stream=f"{name}-{i % 7}", events=(fact,))])

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


async def test_a_tailing_reader_sees_every_position_once_in_order_under_concurrent_writers(
    fresh_databases: Databases,
) -> None:
    """The guarantee a plain ``bigserial`` breaks (DESIGN §6): 6 writer processes append while a
    reader tails with ``read_all(after=last)`` + ``wait``; it must see 1..n, each once."""
    import sys

    import anyio

    from lifecycle._stores import open_store

    url = await fresh_databases()
    writers, each = 6, 150
    seen: list[int] = []
    async with open_store(url) as store, anyio.create_task_group() as tg:
        procs = [
            await anyio.open_process([sys.executable, "-c", WRITER, url, f"w{n}", str(each)])
            for n in range(writers)
        ]

        async def tail() -> None:
            last = 0
            while last < writers * each:
                await store.wait(last)
                for record in await store.read_all(after=last):
                    seen.append(record.position)
                    last = record.position

        tg.start_soon(tail)
        for proc in procs:
            assert await proc.wait() == 0
    assert seen == list(range(1, writers * each + 1))


async def test_three_engine_processes_share_one_database_and_one_is_killed(
    fresh_databases: Databases,
) -> None:
    """The multi-host simulation of issue 14: 3 engine processes (each its own pool, as separate
    hosts would have) drive 300 runs through one database; one is SIGKILLed once its runs are
    recorded; the others end its runs ``engine_lost`` (their periodic reconcile); every run
    ends, and a reader tailing the log saw every position exactly once, in order."""
    import signal
    import sys
    from pathlib import Path

    import anyio

    from lifecycle import AsyncRuns

    worker = str(Path(__file__).with_name("_pg_engine.py"))
    url = await fresh_databases()
    seen: list[int] = []
    async with AsyncRuns(url) as runs:
        procs = [
            # a lease of 3 s: an engine whose loop a loaded machine stalls for a second must
            # not be taken for dead (its runs would end engine_lost); the dead one's end in ~4 s
            await anyio.open_process([sys.executable, worker, url, name, "100", "3.0"])
            for name in ("h1", "h2", "h3")
        ]
        doomed = procs[0]
        assert doomed.stdout is not None
        line = b""
        with anyio.fail_after(60):
            while b"submitted" not in line:
                line += await doomed.stdout.receive()
        doomed.send_signal(signal.SIGKILL)

        async def tail() -> None:
            last = 0
            while True:
                with anyio.move_on_after(2):
                    await runs.store.wait(last)
                page = await runs.store.read_all(after=last)
                if not page and all(p.returncode is not None for p in procs[1:]):
                    return
                for record in page:
                    seen.append(record.position)
                    last = record.position

        async with anyio.create_task_group() as tg:
            tg.start_soon(tail)
            with anyio.fail_after(120):
                for proc in procs:
                    await proc.wait()
        assert [p.returncode for p in procs[1:]] == [0, 0]
        summaries = await runs.list()
        assert len(summaries) == 300
        assert all(s.terminal for s in summaries), [s for s in summaries if not s.terminal][:3]
        lost = [s for s in summaries if s.name.startswith("h1-") and s.reason == "engine_lost"]
        assert lost, "the killed engine had runs in flight; the others must end them engine_lost"
        assert {s.outcome for s in summaries if not s.name.startswith("h1-")} == {"succeeded"}
        head = (await runs.store.read_all())[-1].position
    assert seen == list(range(1, head + 1))


async def test_concurrent_appends_of_one_process_share_transactions(
    fresh_databases: Databases,
) -> None:
    """Group commit: 100 appends at once take a handful of transactions, not 100, and one
    that fails its expected version fails alone."""
    import anyio

    from lifecycle import ConcurrencyError
    from lifecycle import events as ev
    from lifecycle._stores import Write, open_store
    from lifecycle._stores._postgres import PostgresStore

    store = open_store(await fresh_databases())
    assert isinstance(store, PostgresStore)
    failed: list[BaseException] = []
    async with store:

        async def one(i: int) -> None:
            expected = 5 if i == 50 else None  # the stream is new: this one must fail
            fact = ev.LogRecorded(text=str(i))
            try:
                await store.append(
                    [Write(stream=f"s-{i}", events=(fact,), expected_version=expected)]
                )
            except ConcurrencyError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(one, i)
        assert len(failed) == 1
        assert len(await store.read_all()) == 99
        assert store.transactions <= 5, store.transactions


async def test_the_two_engines_example(fresh_databases: Databases) -> None:
    """examples/two_engines.py: two engine processes on one database, read back by a third."""
    import sys

    import anyio

    url = await fresh_databases()
    done = await anyio.run_process([sys.executable, str(TWO_ENGINES), url], check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 6 and all(line.endswith("Completed") for line in lines)
    assert {line.split()[2] for line in lines} == {"alpha-job", "beta-job"}
