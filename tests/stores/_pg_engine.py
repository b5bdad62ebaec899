"""An engine process of its own (a host, as far as the store can tell: its own connection pool),
for the multi-host test: ``python _pg_engine.py URL NAME RUNS LEASE_TTL``. It submits RUNS runs
of two short containers, prints ``submitted`` once they are all recorded, drives them, and then
keeps its engine open — reconciling the runs of engines that died — until no run in the store is
active (or 60 s pass)."""

from __future__ import annotations

import sys

import anyio

import lifecycle
from lifecycle import Container, Engine


async def work() -> str:
    await anyio.sleep(0.3)
    return "done"


async def main(url: str, name: str, count: int, ttl: float) -> None:
    async with (
        lifecycle.AsyncRuns(url, poll_interval=0.05) as runs,
        Engine(runs, adapter="inprocess", lease_ttl=ttl) as engine,
    ):
        ids = []
        for i in range(count):
            containers = [Container("a", call=work), Container("b", call=work, depends_on=["a"])]
            run = await engine.submit("datatailr", name=f"{name}-{i}", containers=containers)
            ids.append(run.id)
        print("submitted", flush=True)
        for run_id in ids:
            await engine.wait(run_id)
        with anyio.move_on_after(60):
            while any(not s.terminal for s in await runs.list()):  # noqa: ASYNC110  (other processes)
                await anyio.sleep(0.2)


if __name__ == "__main__":
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
