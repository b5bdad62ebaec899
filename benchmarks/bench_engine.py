"""Engine overhead per container.

    .venv/bin/python benchmarks/bench_engine.py [--containers 1000] [--parallel 64]
        [--processes 100] [--repeat 3] [--without-watchdog]

1. ``inprocess`` + a no-op callable, ``--containers`` independent containers in one run, on
   SQLite (``fast`` durability, a fresh file) and on ``memory://``: every container gets its
   start facts, ExecutionStarted, ExecutionSucceeded (7 facts, 3 appends), all committed.
   Reported: containers/s and µs per container, end to end from ``submit`` to the terminal run
   (best of ``--repeat``). Target: ≥ 2,000 containers/s on SQLite.
2. ``subprocess`` + ``true``, ``--processes`` containers one after another (``max_parallel=1``)
   against a bare ``subprocess.run(["true"])`` loop timed in the same run: the difference per
   container is the engine's and the adapter's overhead around a process.
   ``--without-watchdog`` leaves the adapter's watchdog out (``watch``/``forget`` do nothing),
   to see what it costs: run with and without, same machine, one after the other.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import structlog

import lifecycle
from lifecycle._engine import Container, Engine


def noop() -> None:
    return None


async def one_run(url: str, containers: int, parallel: int, adapter: str, command: bool) -> float:
    async with lifecycle.AsyncRuns(url) as runs:
        engine = Engine(runs, adapter=adapter, max_parallel=parallel)
        true = shutil.which("true") or "/bin/true"
        specs = [
            Container(f"c{i}", command=[true]) if command else Container(f"c{i}", call=noop)
            for i in range(containers)
        ]
        began = time.perf_counter()
        async with engine:
            run = await engine.submit("domino", containers=specs)
            view = await engine.wait(run.id)
        took = time.perf_counter() - began
        assert view.state == "Succeeded", view.state
        return took


def best(
    repeat: int,
    url_of: Callable[[Path], str],
    *,
    containers: int,
    parallel: int,
    adapter: str,
    command: bool,
) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            url = url_of(Path(tmp))
            times.append(anyio.run(one_run, url, containers, parallel, adapter, command))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--without-watchdog", action="store_true")
    args = parser.parse_args()
    if args.without_watchdog:
        from lifecycle_adapters._watchdog import Watchdog  # noqa: PLC0415

        Watchdog.watch = Watchdog.forget = lambda self, identity: None  # type: ignore[method-assign]
    # an application configures logging (the library never does): keep the figures readable
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    n = args.containers
    print(f"inprocess, no-op callable, {n} containers, max_parallel={args.parallel}")
    stores: list[tuple[str, Callable[[Path], str]]] = [
        ("sqlite (fast)", lambda p: f"sqlite:///{p / 'runs.db'}"),
        ("memory", lambda p: "memory://"),
    ]
    for label, url_of in stores:
        took = best(
            args.repeat,
            url_of,
            containers=n,
            parallel=args.parallel,
            adapter="inprocess",
            command=False,
        )
        print(f"  {label:14} {n / took:8,.0f} containers/s  {took / n * 1e6:7.0f} µs/container")

    m = args.processes
    true = shutil.which("true") or "/bin/true"
    began = time.perf_counter()
    for _ in range(m):
        subprocess.run([true], check=True)
    bare = (time.perf_counter() - began) / m
    took = best(
        args.repeat,
        lambda p: f"sqlite:///{p / 'runs.db'}",
        containers=m,
        parallel=1,
        adapter="subprocess",
        command=True,
    )
    per = took / m
    watchdog = " (watchdog off)" if args.without_watchdog else ""
    print(f"subprocess, `true`, {m} containers one at a time, sqlite{watchdog}")
    print(f"  bare subprocess.run loop  {bare * 1e6:7.0f} µs/process")
    print(f"  engine                    {per * 1e6:7.0f} µs/container")
    print(f"  overhead                  {(per - bare) * 1e6:7.0f} µs/container ({per / bare:.1f}x)")


if __name__ == "__main__":
    main()
