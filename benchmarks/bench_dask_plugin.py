"""What ``lifecycle_adapters.dask.LifecyclePlugin`` costs a Dask computation (issue 13).

    .venv/bin/python benchmarks/bench_dask_plugin.py [--tasks 1000] [--repeat 5]

On one ``LocalCluster`` (2 worker processes), in the same run: a fan-out/fan-in graph of
``--tasks`` no-op tasks computed without the plugin (the reference), then with the plugin
registered (SQLite store, ``fast`` durability), alternating, ``--repeat`` times each. Reported:
the median wall time of ``client.compute(...).result()`` each way and their ratio (the target
is ≤ 1.10: the writer runs off the scheduler's hot path), the time ``flush()`` then takes to
write what is left, and the cost of one hook call measured in-process (the plugin's
``transition`` on a fake key, the writer thread not started).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import distributed
from dask.delayed import delayed
from lifecycle_adapters.dask import LifecyclePlugin


def _noop(*_: Any) -> int:
    return 1


def _graph(n: int, salt: int) -> Any:
    leaves = [delayed(_noop, pure=True)(salt, i) for i in range(n - 1)]
    return delayed(_noop, pure=True)(*leaves)


def _hook_cost(calls: int = 200_000) -> float:
    plugin = LifecyclePlugin("memory://")
    plugin._thread = object()  # type: ignore[assignment]  # measure the hook, not the writer
    t = time.perf_counter()
    for i in range(calls):
        plugin.transition(("key", i), "waiting", "processing", stimulus_id="s")
    per = (time.perf_counter() - t) / calls
    plugin._queue.clear()
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2, help="the writer's batch interval")
    args = parser.parse_args()
    print(f"one hook call: {_hook_cost() * 1e6:.2f} µs (target ≲ 20 µs)")
    tmp = Path(tempfile.mkdtemp())
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.compute(_graph(50, -1)).result()  # warm up the workers
        without, with_plugin, flushes = [], [], []
        plugin = LifecyclePlugin(
            f"sqlite:///{tmp / 'runs.db'}?durability=fast", interval=args.interval
        )
        salt = 0
        for _ in range(args.repeat):
            salt += 1
            t = time.perf_counter()
            client.compute(_graph(args.tasks, salt)).result()
            without.append(time.perf_counter() - t)
            client.register_plugin(plugin)
            salt += 1
            t = time.perf_counter()
            client.compute(_graph(args.tasks, salt)).result()
            with_plugin.append(time.perf_counter() - t)
            t = time.perf_counter()
            plugin.flush()
            flushes.append(time.perf_counter() - t)
            client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()
    a, b = statistics.median(without), statistics.median(with_plugin)
    print(f"{args.tasks}-task graph without the plugin: median {a * 1e3:.0f} ms")
    print(f"{args.tasks}-task graph with the plugin:    median {b * 1e3:.0f} ms")
    print(f"ratio with/without: {b / a:.2f} (target ≤ 1.10)")
    print(f"flush() after the result: median {statistics.median(flushes) * 1e3:.0f} ms")
    print(f"runs recorded: {len(plugin.run_ids)}")


if __name__ == "__main__":
    main()
