"""The ``sqlite:///`` store against raw ``sqlite3`` on the same schema, in the same run.

    .venv/bin/python benchmarks/bench_sqlite.py [--quick] [--repeat 5] [--dir DIR]
        [--only {all,appends,replay,list}]

Every figure is a ratio against a reference measured in the same run, on the same machine,
into the same schema with the same pragmas (WAL, ``synchronous=NORMAL``), each measurement
repeated ``--repeat`` times (best and median shown):

1. **Appends** — 100 tasks, one run each, each appending single facts to its own stream with an
   expected version, ``fast`` durability; the group commit batches them. Reference: raw
   ``sqlite3``, one transaction per 100 facts (one per stream), rows inserted with
   ``executemany`` (event ids and msgpack encoding included, as the store must do them too).
   Also shown: the cost asyncio alone adds to each append (100 tasks awaiting futures that one
   batch resolves, no store), and the ceiling it puts on the ratio; for information, the same
   appends through ``AsyncRuns.record`` (validation included).
2. **Replay** — ``lifecycle.areplay(url)``: the whole log read, decoded and folded, a
   ``RunView`` per run in the report (for a SQLite store it reads the log as columns, each page
   in one SQLite step on the reader thread while the event loop decodes and folds the one
   before). Also, for information: ``read_all`` in pages of 5,000 + ``Projector.feed`` + the
   views. Reference: raw ``sqlite3`` reading the same rows in pages of 5,000 (no decoding);
   and, to show that page size is not where the difference comes from, in pages of 50,000
   (the largest ``areplay`` asks for). On two logs: 10,000 runs (~100,000 facts, the fold
   benchmark's size) and 100,000 runs (~1,000,000 facts).
3. **Listing** — ``list_runs(name=…, start_time=…, end_time=…)`` over the big log (1,000,000
   facts, 100,000 runs): median latency of many calls; target under 10 ms.

``--quick`` uses 10× smaller sizes. Needs asyncio (aiosqlite).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, STOP_SEQUENCE
from lifecycle._replay._replayer import COLUMN_PAGES
from lifecycle._runs import summary_of
from lifecycle._stores import Write
from lifecycle._stores import _sqlite_schema as schema
from lifecycle._stores._sqlite import Durability, SQLiteStore
from lifecycle._stores._sqlite_rows import to_us
from lifecycle._views import Projector

DIALECTS = {"datatailr": "run", "domino": "run", "qualytics": "scan"}
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def report(name: str, unit: str, ours: list[float], ref: list[float] | None = None) -> None:
    best, median = max(ours), statistics.median(ours)
    line = f"{name:<44} {best:>12,.0f} {median:>12,.0f} {unit}"
    if ref:
        rbest, rmed = max(ref), statistics.median(ref)
        line += f"   ref {rbest:>10,.0f} {rmed:>10,.0f}   ratio {best / rbest:5.2f} (best)"
        line += f" {statistics.median(o / r for o, r in zip(ours, ref, strict=True)):5.2f} (med)"
    print(line, flush=True)


# -- 1. appends -----------------------------------------------------------------------------------


async def store_appends(
    path: Path, tasks: int, per_task: int, durability: Durability = "fast"
) -> float:
    async with SQLiteStore(f"sqlite:///{path}", durability=durability) as store:

        async def one_run(i: int) -> None:
            stream = f"run-{i}"
            for version in range(per_task):
                fact = ev.LogRecorded(text="a line of output")
                await store.append([Write(stream=stream, events=(fact,), expected_version=version)])

        start = time.perf_counter()
        await asyncio.gather(*(one_run(i) for i in range(tasks)))
        return tasks * per_task / (time.perf_counter() - start)


def raw_appends(path: Path, tasks: int, per_task: int, synchronous: str = "NORMAL") -> float:
    with sqlite3.connect(path, isolation_level=None) as db:
        schema.prepare(db, str(path), create=True)
        db.execute(f"PRAGMA synchronous = {synchronous}")
        for pragma in (*schema.CONNECTION_PRAGMAS, *schema.WRITER_PRAGMAS):  # the store's own
            db.execute(pragma)
        db.executemany(
            "INSERT INTO streams (id, name) VALUES (?, ?)",
            [(i + 1, f"run-{i}") for i in range(tasks)],
        )
        insert = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"
        position = 0
        start = time.perf_counter()
        for version in range(1, per_task + 1):
            at = to_us(dt.datetime.now(dt.UTC))
            rows = []
            for i in range(tasks):
                position += 1
                fact = ev.LogRecorded(text="a line of output")
                rows.append((position, i + 1, version, ev.new_event_id(), at, ev.encode_fact(fact)))
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, rows)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
    db.close()
    return tasks * per_task / elapsed


async def asyncio_floor(tasks: int, per_task: int) -> float:
    """What no asyncio group commit can avoid: ``tasks`` tasks each awaiting, ``per_task``
    times, a future that one batch resolves for all of them — no store, no thread, no SQL.
    Returns seconds per append; the appends' ceiling is then ``1 / (1 / raw + floor)``."""
    loop = asyncio.get_running_loop()
    queue: list[asyncio.Future[None]] = []

    async def one_run() -> None:
        for _ in range(per_task):
            future = loop.create_future()
            queue.append(future)
            if len(queue) == tasks:  # the last of the batch resolves it, as a commit would
                batch = queue[:]
                queue.clear()
                for f in batch:
                    f.set_result(None)
            await future

    start = time.perf_counter()
    await asyncio.gather(*(one_run() for _ in range(tasks)))
    return (time.perf_counter() - start) / (tasks * per_task)


async def service_records(path: Path, tasks: int, per_task: int) -> float:
    async with lifecycle.AsyncRuns(f"sqlite:///{path}") as runs:
        ids = []
        for _ in range(tasks):
            run = await runs.create("domino", name="bench")
            await runs.record(run.id, START_SEQUENCE)
            ids.append(run.id)

        async def one_run(run_id: int) -> None:
            for _ in range(per_task):
                await runs.record(run_id, ev.LogRecorded(text="a line of output"))

        start = time.perf_counter()
        await asyncio.gather(*(one_run(i) for i in ids))
        return tasks * per_task / (time.perf_counter() - start)


# -- 2. replay and 3. listing: one big log --------------------------------------------------------


def history(rnd: random.Random, dialect: str) -> list[ev.Fact]:
    facts: list[ev.Fact] = [*START_SEQUENCE]
    facts += [
        ev.LogRecorded(level=rnd.choice(["info", "info", "warning"]), text="line")
        for _ in range(rnd.randint(2, 6))
    ]
    end = rnd.random()
    if end < 0.7:
        facts.append(ev.ExecutionSucceeded())
    elif end < 0.85:
        facts.append(ev.ExecutionFailed(exit_code=1))
    else:
        facts += STOP_SEQUENCE()
    return facts


async def populate(path: Path, runs: int, names: int) -> int:
    """``runs`` runs of ~10 facts, appended through the store in batches of 1,000 runs whose
    facts are interleaved round-robin, as live runs' are. Run ``n`` is created at minute ``n``
    rounded down to its batch (so a one-day window holds one or two batches: ~1,440 runs), and
    named ``job-{n % names}``."""
    rnd = random.Random(7)
    dialects = list(DIALECTS)
    total = 0
    async with SQLiteStore(f"sqlite:///{path}") as store:
        for first in range(1, runs + 1, 1000):
            ids = range(first, min(first + 1000, runs + 1))
            writes = []
            projector = Projector()
            pending = []
            for run_id in ids:
                d = dialects[run_id % 3]
                requested = ev.Requested(
                    dialect=d, operation=DIALECTS[d], name=f"job-{run_id % names}"
                )
                pending.append((run_id, [requested, *history(rnd, d)]))
            # interleave the runs' facts round-robin, one write per fact, as live runs would
            at = EPOCH + dt.timedelta(minutes=first)
            cursor = 0
            while pending:
                alive = []
                for run_id, facts in pending:
                    if cursor < len(facts):
                        writes.append(Write(stream=f"run-{run_id}", events=(facts[cursor],)))
                        alive.append((run_id, facts))
                pending = alive
                cursor += 1
            records = await store.append(writes, at=at)
            projector.feed(records)
            summaries = [summary_of(view) for view in projector.views()]
            await store.append([], summaries=summaries)
            total += len(records)
    return total


async def store_replay(path: Path, page: int, runs: int) -> tuple[float, int]:
    """``read_all`` in pages + ``Projector.feed`` + a ``RunView`` per run."""
    async with SQLiteStore(f"sqlite:///{path}") as store:
        projector = Projector()
        start = time.perf_counter()
        after, count = 0, 0
        while records := await store.read_all(after=after, limit=page):
            projector.feed(records)
            after = records[-1].position
            count += len(records)
        views = list(projector.views())
        elapsed = time.perf_counter() - start
        assert len(views) == runs
        assert not projector.errors
        return count / elapsed, count


async def api_replay(path: Path, runs: int) -> tuple[float, int]:
    """``lifecycle.areplay(url)``: the store opened, read, decoded, folded, a ``RunView`` per
    run in the report, the store closed."""
    start = time.perf_counter()
    report = await lifecycle.areplay(f"sqlite:///{path}")
    elapsed = time.perf_counter() - start
    assert report.ok
    assert len(report.views) == runs
    assert all(view.terminal for view in report.views.values())
    return report.records / elapsed, report.records


def raw_replay(path: Path, page: int) -> float:
    with sqlite3.connect(path, isolation_level=None) as db:
        for pragma in schema.CONNECTION_PRAGMAS:
            db.execute(pragma)
        sql = (
            "SELECT position, stream_id, version, event_id, recorded_at, data FROM events "
            "WHERE position > ? ORDER BY position LIMIT ?"
        )
        start = time.perf_counter()
        after, count = 0, 0
        while rows := db.execute(sql, (after, page)).fetchall():
            after = rows[-1][0]
            count += len(rows)
        elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


async def listing(
    path: Path, calls: int, query: Callable[[random.Random], dict[str, Any]]
) -> tuple[float, float, int]:
    """Median and worst latency (ms) of ``list_runs(**query(rnd))``, and runs per page."""
    rnd = random.Random(3)
    async with SQLiteStore(f"sqlite:///{path}") as store:
        times, found = [], 0
        for _ in range(calls):
            kwargs = query(rnd)
            t = time.perf_counter()
            page = await store.list_runs(**kwargs)
            times.append(time.perf_counter() - t)
            found += len(page)
    return statistics.median(times) * 1e3, max(times) * 1e3, found // calls


async def measure(fn: Callable[[], Awaitable[float]], repeat: int) -> list[float]:
    return [await fn() for _ in range(repeat)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    parser.add_argument(
        "--only",
        choices=("all", "appends", "replay", "list"),
        default="all",
        help="run one section alone (default: all)",
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    tasks, per_task = 100, 1000 // scale
    runs, names = 100_000 // scale, 1000 // scale
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, files in {root}")
    print(f"{'':<44} {'best':>12} {'median':>12}")

    if args.only in ("all", "appends"):
        await appends_section(root, tasks, per_task, args.repeat)
    big = root / "big.db"
    if args.only in ("all", "replay"):
        await replay_section(root, runs, names, args.repeat)  # populates small.db and big.db
    elif args.only == "list":
        await populated(big, runs, names)
    if args.only in ("all", "list"):
        await list_section(big, runs, names)


async def populated(path: Path, n_runs: int, names: int) -> int:
    start = time.perf_counter()
    facts = await populate(path, n_runs, names)
    took = time.perf_counter() - start
    print(f"   populated {facts:,} facts / {n_runs:,} runs in {took:.1f} s", flush=True)
    return facts


async def appends_section(root: Path, tasks: int, per_task: int, repeat: int) -> None:
    counter = iter(range(1_000_000))

    def fresh() -> Path:
        return root / f"append-{next(counter)}.db"

    ours, ref = [], []
    for _ in range(repeat):  # interleaved, so both see the same machine
        ours.append(await store_appends(fresh(), tasks, per_task))
        ref.append(raw_appends(fresh(), tasks, per_task))
    report(f"1. appends, {tasks} concurrent runs", "facts/s", ours, ref)
    # The ceiling: the raw rate with only asyncio's own cost of waking each appender added.
    floors = [await asyncio_floor(tasks, per_task) for _ in range(repeat)]
    floor = statistics.median(floors)
    ceiling = [1 / (1 / r + floor) for r in ref]
    of_raw = statistics.median(c / r for c, r in zip(ceiling, ref, strict=True))
    reached = statistics.median(o / c for o, c in zip(ours, ceiling, strict=True))
    print(
        f"   asyncio alone: {floor * 1e6:.2f} µs per append (tasks awaiting batch-resolved "
        f"futures, no store) -> ceiling {of_raw:.2f} of raw; the store reaches {reached:.2f} "
        "of that ceiling (median)",
        flush=True,
    )
    service = await measure(lambda: service_records(fresh(), tasks, per_task // 2), repeat)
    report("   (AsyncRuns.record, validation included)", "facts/s", service)
    ours, ref = [], []
    for _ in range(repeat):
        ours.append(await store_appends(fresh(), tasks, per_task, "durable"))
        ref.append(raw_appends(fresh(), tasks, per_task, "FULL"))
    report("   (the same, durable: synchronous=FULL)", "facts/s", ours, ref)


async def replay_section(root: Path, runs: int, names: int, repeat: int) -> None:
    page = 5_000  # what a consumer would ask for; big pages mostly feed the garbage collector
    for label, n_runs in (("small", runs // 10), ("big", runs)):
        path = root / f"{label}.db"
        facts = await populated(path, n_runs, names)
        api, ours, ref, ref_big = [], [], [], []
        for _ in range(repeat):  # interleaved, so all see the same machine
            rate, count = await api_replay(path, n_runs)
            assert count == facts
            api.append(rate)
            ref.append(raw_replay(path, page))
            rate, count = await store_replay(path, page, n_runs)
            assert count == facts
            ours.append(rate)
            ref_big.append(raw_replay(path, COLUMN_PAGES[-1]))
        report(f"2. replay: areplay(url), {n_runs:,} runs", "facts/s", api, ref)
        report("   (read_all pages + Projector.feed + views)", "facts/s", ours, ref)
        largest = f"{COLUMN_PAGES[-1]:,}"
        report(f"   (areplay against raw pages of {largest})", "facts/s", api, ref_big)


async def list_section(big: Path, runs: int, names: int) -> None:
    def window(rnd: random.Random, days: float) -> dict[str, Any]:
        start_time = EPOCH + dt.timedelta(minutes=rnd.randrange(runs))
        return {"start_time": start_time, "end_time": start_time + dt.timedelta(days=days)}

    queries: list[tuple[str, Callable[[random.Random], dict[str, Any]]]] = [
        ("name + 1-day window", lambda r: {"name": f"job-{r.randrange(names)}", **window(r, 1)}),
        ("name, newest 50", lambda r: {"name": f"job-{r.randrange(names)}", "limit": 50}),
        (
            "state=Failed + 30-day window, newest 100",
            lambda r: {"state": "Failed", **window(r, 30), "limit": 100},
        ),
        ("everything, newest 100", lambda r: {"limit": 100}),
    ]
    for label, query in queries:
        median, worst, found = await listing(big, 200, query)
        print(
            f"3. list_runs({label}), {runs:,} runs: median {median:.2f} ms, "
            f"worst {worst:.2f} ms, {found} runs per page"
        )


if __name__ == "__main__":
    asyncio.run(main())
