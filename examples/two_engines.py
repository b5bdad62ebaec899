"""Two engines, two processes, one PostgreSQL database (issue 14).

    .venv/bin/python examples/two_engines.py postgresql://user@host:5432/db

Each engine process — it could be on another host: it has its own connection pool — submits
three runs and drives them; then this program, a third process, reads every run back from the
shared log. (`tests/_postgres.py` shows how to start a throwaway server to try it.)
"""

from __future__ import annotations

import subprocess
import sys

import anyio

import lifecycle
from lifecycle import Container, Engine


async def crunch(n: int) -> int:
    await anyio.sleep(0.1)
    return n * n


async def engine(url: str, host: str) -> None:
    async with lifecycle.AsyncRuns(url) as runs, Engine(runs, adapter="inprocess") as eng:
        for n in range(3):
            run = await eng.submit(
                "datatailr",
                name=f"{host}-job",
                containers=[Container("crunch", call=crunch, args=(n,))],
            )
            await eng.wait(run.id)


def main() -> None:
    if len(sys.argv) == 3:  # an engine process
        anyio.run(engine, sys.argv[1], sys.argv[2])
        return
    url = sys.argv[1]
    hosts = [subprocess.Popen([sys.executable, __file__, url, host]) for host in ("alpha", "beta")]
    assert all(p.wait() == 0 for p in hosts)
    with lifecycle.Runs(url) as runs:
        for summary in sorted(runs.list(), key=lambda s: s.run_id):
            print(f"run {summary.run_id}  {summary.name:10}  {summary.state}")


if __name__ == "__main__":
    main()
