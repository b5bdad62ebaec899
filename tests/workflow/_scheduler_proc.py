"""A scheduler process for the kill campaign (``test_scheduler_kill.py``): a real
``Scheduler`` on a SQLite file, on a ``FastClock`` from an origin every restart shares, so they
all agree on what time it is.

Usage: ``python -m tests.workflow._scheduler_proc URL ORIGIN START SPEED``
"""

from __future__ import annotations

import datetime as dt
import sys

import anyio

from lifecycle import FastClock, Scheduler


async def main(url: str, origin: float, start: dt.datetime, speed: float) -> None:
    clock = FastClock(speed, start=start, origin=origin)
    async with Scheduler(url, clock=clock, catch_up="all", lease_ttl=1.0, interval=3.0) as s:
        await s.run()


if __name__ == "__main__":
    url, origin, start, speed = sys.argv[1:5]
    anyio.run(main, url, float(origin), dt.datetime.fromisoformat(start), float(speed))
