"""An engine in a process of its own, for the engine-lost test: it submits a run whose one
container runs until the process dies, prints ``{"run_id": N}`` once the container is running,
and waits to be killed. Usage: ``python _engine_worker.py sqlite:///path LEASE_TTL``."""

from __future__ import annotations

import json
import sys

import anyio

import lifecycle
from lifecycle import Container, Engine


async def main(url: str, ttl: float) -> None:
    started = anyio.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep(3600)

    async with (
        lifecycle.AsyncRuns(url) as runs,
        Engine(runs, adapter="inprocess", lease_ttl=ttl) as engine,
    ):
        run = await engine.submit(
            "domino", name="doomed", containers=[Container("work", call=forever)]
        )
        await started.wait()
        while (await runs.get(run.id)).containers["work"].state != "Running":  # noqa: ASYNC110
            await anyio.sleep(0.01)
        print(json.dumps({"run_id": run.id}), flush=True)
        await engine.wait(run.id)


if __name__ == "__main__":
    import structlog

    # an application configures logging, the library never does: keep stdout for the test
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    anyio.run(main, sys.argv[1], float(sys.argv[2]))
