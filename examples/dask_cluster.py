"""Run a run's containers on a Dask cluster: the ``dask`` adapter (issue 15).

    .venv/bin/python examples/dask_cluster.py [STORE_URL]

Without a scheduler address the adapter starts a ``LocalCluster`` (2 worker processes) and
closes it at the end; ``DaskAdapter("tcp://scheduler:8786")`` (or ``LIFECYCLE_DASK_SCHEDULER``)
runs the same containers on a real cluster. Four Python calls square numbers in parallel, a
fifth adds their results (``Upstream``), and a command prints where it ran; each container is a
child process of a Dask task, its output recorded as it prints.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio
from lifecycle_adapters.dask_adapter import DaskAdapter

import lifecycle
from lifecycle import Container, Upstream
from lifecycle import events as ev


def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


def total(*numbers: int) -> int:
    return sum(numbers)


async def main(store: str) -> None:
    async with (
        lifecycle.AsyncRuns(store) as runs,
        DaskAdapter() as adapter,  # DaskAdapter("tcp://scheduler:8786") for a real cluster
        lifecycle.Engine(runs, adapter=adapter) as engine,
    ):
        where = "import os, socket; print('hello from', socket.gethostname(), os.getpid())"
        run = await engine.submit(
            "datatailr",
            name="dask-squares",
            containers=[
                *[Container(f"square_{i}", call=square, args=(i,)) for i in range(4)],
                Container("total", call=total, args=[Upstream(f"square_{i}") for i in range(4)]),
                Container("hello", command=[sys.executable, "-c", where], depends_on=["total"]),
            ],
        )
        view = await engine.wait(run.id)
        print(f"run {view.run_id} {view.name}: {view.state}")
        print("total =", await lifecycle.load_result(runs, run.id, "total"))
        for record in await runs.history(run.id):
            if record.stream.endswith("/hello") and isinstance(record.event, ev.LogRecorded):
                print(f"  hello [{record.event.stream}] {record.event.text}")


if __name__ == "__main__":
    default = f"sqlite:///{Path(tempfile.mkdtemp()) / 'runs.db'}"
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else default)
