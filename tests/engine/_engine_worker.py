"""An engine in a process of its own, for the engine-lost tests: it submits a run whose one
container runs until it is killed, prints ``{"run_id": N, "pids": [...], "watchdog": PID}`` once
the container is running, and waits to be killed. Usage: ``python _engine_worker.py
sqlite:///path LEASE_TTL [inprocess|subprocess]``; with ``subprocess`` the container is an OS
process that starts a child of its own, and ``pids`` are theirs (read from its log)."""

from __future__ import annotations

import json
import sys

import anyio

import lifecycle
from lifecycle import Container, Engine
from lifecycle import events as ev

GRANDPARENT = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print('pids', os.getpid(), child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


async def main(url: str, ttl: float, adapter: str) -> None:
    async def forever() -> None:
        await anyio.sleep(3600)

    if adapter == "subprocess":
        work = Container("work", command=[sys.executable, "-c", GRANDPARENT])
    else:
        work = Container("work", call=forever)
    async with (
        lifecycle.AsyncRuns(url, poll_interval=0.05) as runs,
        Engine(runs, adapter=adapter, lease_ttl=ttl) as engine,
    ):
        run = await engine.submit("domino", name="doomed", containers=[work])
        pids: list[int] = []
        while (await runs.get(run.id)).containers["work"].state != "Running" or (
            adapter == "subprocess" and not pids
        ):
            await anyio.sleep(0.02)
            for r in await runs.history(run.id):
                if isinstance(r.event, ev.LogRecorded) and r.event.text.startswith("pids "):
                    pids = [int(p) for p in r.event.text.split()[1:]]
        watchdog = getattr(getattr(engine.adapter, "watchdog", None), "pid", None)
        print(json.dumps({"run_id": run.id, "pids": pids, "watchdog": watchdog}), flush=True)
        await engine.wait(run.id)


if __name__ == "__main__":
    import structlog

    # an application configures logging, the library never does: keep stdout for the test
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    adapter = sys.argv[3] if len(sys.argv) > 3 else "inprocess"
    anyio.run(main, sys.argv[1], float(sys.argv[2]), adapter)
