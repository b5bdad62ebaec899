"""The PostgreSQL store against raw asyncpg on the same server, in the same run (issue 14).

    .venv/bin/python benchmarks/bench_postgres.py [--runs 100] [--appends 50] [--replay 100000]

Starts a throwaway cluster from Debian's ``postgresql`` (``tests/_postgres.py``; or uses
``LIFECYCLE_TEST_POSTGRES``), a fresh database per measurement. Measured:

- **appends**: ``--runs`` concurrent tasks, each appending ``--appends`` single facts to a
  stream of its own through ``PostgresStore.append`` (group commit, table lock, read model
  untouched) — against the reference: the same tasks through a bare asyncpg group commit that
  takes the same lock, reads the head and copies the same rows, with nothing else (no event ids
  checked, no versions checked, no notification);
- **replay**: reading ``--replay`` facts with ``read_all`` in pages of 5,000 (decoded into
  ``Recorded``) — against raw asyncpg fetching the same pages.

- **processes**: ``--processes`` OS processes appending at once (``--runs`` concurrent tasks
  split among them, each with its own connection pool, as separate hosts would), started
  together — against the same appends from one process, in the same run;
- **eventsourcing** (with ``--eventsourcing PYTHON``): the eventsourcing library's own
  PostgreSQL recorder appending 3,000 single events from 1, 10 and ``--runs`` threads, against
  the store appending as many from as many tasks, on the same server
  (``_eventsourcing_appends.py``, run by ``PYTHON`` of a throwaway venv: ``.uv/bin/uv venv
  /tmp/es && VIRTUAL_ENV=/tmp/es .uv/bin/uv pip install 'eventsourcing[postgres]'``; its
  published figure is 5,745 events/s).

Figures: facts/s each way and the ratio (targets, issue 14: appends ≥ 30k facts/s and ≥ 0.7 of
the reference). ``--replay 1000000`` for the issue's million facts (about two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import os
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import events as ev
from lifecycle._stores import Write, open_store
from tests._postgres import create_database, start_cluster

PAGE = 5000


async def _database(server: str) -> str:
    return await create_database(server, "bench")


async def store_appends(url: str, runs: int, appends: int) -> float:
    async with open_store(url) as store:

        async def writer(i: int) -> None:
            for n in range(appends):
                fact = ev.LogRecorded(text=f"line {n}")
                await store.append([Write(stream=f"run-{i + 1}", events=(fact,))])

        t = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(runs)))
        return runs * appends / (time.perf_counter() - t)


async def raw_appends(url: str, runs: int, appends: int) -> float:
    """The reference: a bare group commit with the same lock and the same rows."""
    async with open_store(url):  # the same tables
        pass
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
    queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
    busy = False
    data = ev.encode_fact(ev.LogRecorded(text="line"))

    async def commit() -> None:
        nonlocal queue, busy
        busy = True
        while queue:
            batch, queue = queue, []
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("LOCK TABLE lifecycle_events IN EXCLUSIVE MODE")
                head = await conn.fetchval(
                    "SELECT coalesce(max(position), 0) FROM lifecycle_events"
                )
                now = _dt.datetime.now(_dt.UTC)
                rows: list[tuple[Any, ...]] = [
                    (head + k + 1, stream, head + k + 1, uuid.uuid4().hex, now, payload)
                    for k, (stream, payload, _) in enumerate(batch)
                ]
                await conn.copy_records_to_table(
                    "lifecycle_events",
                    records=rows,
                    columns=["position", "stream", "version", "event_id", "recorded_at", "data"],
                )
            for _, _, done in batch:
                done.set_result(None)
        busy = False

    async def writer(i: int) -> None:
        for _ in range(appends):
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue.append((f"raw-{i}", data, done))
            if not busy:
                await commit()
            await done

    t = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(runs)))
    rate = runs * appends / (time.perf_counter() - t)
    await pool.close()
    return rate


async def replay(url: str, facts: int) -> tuple[float, float]:
    async with open_store(url) as store:
        writes = [
            Write(stream=f"run-{i // 50 + 1}", events=(ev.LogRecorded(text=str(i)),))
            for i in range(facts)
        ]
        for start in range(0, facts, PAGE):
            await store.append(writes[start : start + PAGE])
        t = time.perf_counter()
        after, n = 0, 0
        while True:
            page = await store.read_all(after=after, limit=PAGE)
            if not page:
                break
            n += len(page)
            after = page[-1].position
        ours = n / (time.perf_counter() - t)
    conn = await asyncpg.connect(url)
    t = time.perf_counter()
    after, n = 0, 0
    while True:
        rows = await conn.fetch(
            "SELECT position, stream, version, event_id, recorded_at, data FROM lifecycle_events"
            " WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            PAGE,
        )
        if not rows:
            break
        n += len(rows)
        after = rows[-1]["position"]
    raw = n / (time.perf_counter() - t)
    await conn.close()
    return ours, raw


def _child(url: str, runs: int, appends: int, start_at: float) -> None:
    """One of ``--processes``: wait for the common start, append, print the end time."""

    async def go() -> None:
        async with open_store(url) as store:
            await asyncio.sleep(max(0.0, start_at - time.time()))

            async def writer(i: int) -> None:
                for n in range(appends):
                    fact = ev.LogRecorded(text=f"line {n}")
                    await store.append([Write(stream=f"p{os.getpid()}-{i}", events=(fact,))])

            await asyncio.gather(*(writer(i) for i in range(runs)))
            print(time.time(), flush=True)

    asyncio.run(go())


async def processes(url: str, count: int, runs: int, appends: int) -> float:
    """Facts/s of ``count`` processes appending at once (``runs`` tasks split among them)."""
    async with open_store(url):  # the tables, made once
        pass
    start_at = time.time() + 3.0  # every process connected and waiting by then
    each = max(1, runs // count)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            url,
            str(each),
            str(appends),
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    ends = [float((await c.communicate())[0]) for c in children]
    return count * each * appends / (max(ends) - start_at)


async def eventsourcing(python: str, url: str, threads: int, appends: int) -> float:
    parts = urllib.parse.urlsplit(url)
    done = await asyncio.create_subprocess_exec(
        python,
        str(Path(__file__).with_name("_eventsourcing_appends.py")),
        parts.hostname or "127.0.0.1",
        str(parts.port or 5432),
        parts.path.lstrip("/"),
        parts.username or "postgres",
        str(threads),
        str(appends),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await done.communicate()
    if done.returncode != 0:
        raise SystemExit(f"{python} _eventsourcing_appends.py failed ({done.returncode})")
    return float(out)


async def main(args: argparse.Namespace, server: str) -> None:
    for round_ in range(args.repeat):
        ours = await store_appends(await _database(server), args.runs, args.appends)
        raw = await raw_appends(await _database(server), args.runs, args.appends)
        print(
            f"appends, {args.runs} concurrent runs: store {ours:8,.0f} facts/s,"
            f" raw group commit {raw:8,.0f} facts/s, ratio {ours / raw:.2f}  (round {round_ + 1})"
        )
    if args.processes > 1:
        many = await processes(await _database(server), args.processes, args.runs, args.appends)
        one = await processes(await _database(server), 1, args.runs, args.appends)
        print(
            f"appends from {args.processes} processes at once: {many:8,.0f} facts/s,"
            f" one process {one:8,.0f} facts/s, ratio {many / one:.2f}"
        )
    if args.eventsourcing:
        for writers in dict.fromkeys((1, 10, args.runs)):  # 3,000 single events each time
            each = 3000 // writers
            theirs = await eventsourcing(args.eventsourcing, await _database(server), writers, each)
            ours = await store_appends(await _database(server), writers, each)
            print(
                f"{writers:3} writers: eventsourcing's PostgreSQL recorder {theirs:8,.0f} events/s,"
                f" the store {ours:8,.0f} facts/s, ratio {ours / theirs:.1f}"
            )
    ours, raw = await replay(await _database(server), args.replay)
    print(
        f"replay of {args.replay:,} facts: read_all {ours:9,.0f} facts/s, raw {raw:9,.0f},"
        f" ratio {ours / raw:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--appends", type=int, default=50)
    parser.add_argument("--replay", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--eventsourcing", metavar="PYTHON", help="a venv's python with it")
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        raise SystemExit(0)
    parsed = parser.parse_args()
    with start_cluster() as dsn:
        asyncio.run(main(parsed, dsn))
