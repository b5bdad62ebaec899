"""A scheduler process for the kill campaign (``test_scheduler_kill.py``): a real
``Scheduler`` on a SQLite file, with a clock that runs ``speed`` times faster than the machine's
from a shared origin, so every restart agrees on what time it is.

Usage: ``python -m tests.workflow._scheduler_proc URL REAL0 FAKE0 SPEED``
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import anyio

from lifecycle._workflow._scheduler import Scheduler


class FastClock:
    """``now`` = ``fake0`` + (machine time − ``real0``) × ``speed``."""

    def __init__(self, real0: float, fake0: dt.datetime, speed: float) -> None:
        self.real0, self.fake0, self.speed = real0, fake0, speed

    def now(self) -> dt.datetime:
        return self.fake0 + dt.timedelta(seconds=(time.time() - self.real0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.speed)


async def main(url: str, real0: float, fake0: dt.datetime, speed: float) -> None:
    clock = FastClock(real0, fake0, speed)
    async with Scheduler(url, clock=clock, catch_up="all", lease_ttl=1.0, interval=3.0) as s:
        print("ready", flush=True)
        await s.run()


if __name__ == "__main__":
    url, real0, fake0, speed = sys.argv[1:5]
    anyio.run(main, url, float(real0), dt.datetime.fromisoformat(fake0), float(speed))
