"""SQLite ``read()`` latency as a process sees more streams: flat, not growing with the cache.

    .venv/bin/python benchmarks/bench_sqlite_reads.py [--streams 100000] [--samples 2000]

One store of ``--streams`` streams (one fact each). A store opened afresh reads ``--samples``
single streams at random: that is the reference. Then the same store reads every stream (in
reads of 100), and after 1k, 10k and all of them have been seen, reads ``--samples`` single
streams again. Printed: the median latency of one ``read([stream])`` at each point, and its
ratio to the reference (1.0: a read costs what it costs on a fresh store). Issue #12.3: the
stream-name cache was walked on every read, 10-20x the reference at 100k streams.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from lifecycle import events as ev
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore


async def populate(url: str, n: int) -> list[str]:
    streams = [f"run-{i}" for i in range(1, n + 1)]
    async with SQLiteStore(url) as store:
        for i in range(0, n, 1000):
            await store.append(
                [Write(stream=s, events=(ev.LogRecorded(text=s),)) for s in streams[i : i + 1000]]
            )
    return streams


async def latency(
    store: SQLiteStore, streams: list[str], samples: int, rnd: random.Random
) -> float:
    """The median time of one ``read([stream])``, in µs, over ``samples`` random streams."""
    times = []
    for s in rnd.choices(streams, k=samples):
        t0 = time.perf_counter()
        await store.read([s])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    rnd = random.Random(12)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runs.db'}"
        streams = await populate(url, args.streams)
        async with SQLiteStore(url, readonly=True) as fresh:
            ref = await latency(fresh, streams, args.samples, rnd)
        print(f"read([stream]) on a fresh store: {ref:7.1f} µs (reference)")
        async with SQLiteStore(url, readonly=True) as store:
            seen = 0
            for mark in sorted({min(m, args.streams) for m in (1000, 10_000, args.streams)}):
                for i in range(seen, mark, 100):
                    await store.read(streams[i : min(i + 100, mark)])
                seen = mark
                us = await latency(store, streams, args.samples, rnd)
                print(f"after {seen:>7,} streams seen:      {us:7.1f} µs  {us / ref:5.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
