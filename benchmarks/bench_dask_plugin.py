"""What ``lifecycle_adapters.dask.LifecyclePlugin`` costs a Dask computation (issue 13).

    .venv/bin/python benchmarks/bench_dask_plugin.py [--tasks 1000] [--repeat 5]

On one ``LocalCluster`` (2 worker processes), in the same run: a fan-out/fan-in graph of
``--tasks`` no-op tasks computed without a plugin (the reference), with a plugin whose hooks do
nothing (what any transition plugin costs Dask), and with the lifecycle plugin (SQLite store,
``fast`` durability), in alternating order, ``--repeat`` rounds; after each graph the
benchmark waits until the scheduler has forgotten every key, so no arm pays for another's
clean-up. Reported: each arm's median wall time of ``client.compute(...).result()``, its
quartiles and its ratio to the reference (the target is ≤ 1.10 for the lifecycle plugin), the
time ``flush()`` then takes to write what is left, and the cost of one hook call measured
in-process (the plugin's ``transition`` on a fake key, the writer thread not started).
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
from distributed.diagnostics.plugin import SchedulerPlugin
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


class _EmptyPlugin(SchedulerPlugin):
    """The reference for what any transition plugin costs Dask: hooks that do nothing."""

    name = "empty"

    def update_graph(self, *_: Any, **__: Any) -> None:
        pass

    def transition(self, *_: Any, **__: Any) -> None:
        pass


def _forgotten(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def _timed(client: Any, tasks: int, salt: int) -> float:
    """Compute one graph; then release it and wait until the scheduler forgot every key, so no
    arm pays for the previous one's clean-up."""
    t = time.perf_counter()
    future = client.compute(_graph(tasks, salt))
    future.result()
    took = time.perf_counter() - t
    del future
    deadline = time.monotonic() + 30
    while client.run_on_scheduler(_forgotten) and time.monotonic() < deadline:
        time.sleep(0.01)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
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
        _timed(client, 50, -1)  # warm up the workers
        plugin = LifecyclePlugin(
            f"sqlite:///{tmp / 'runs.db'}?durability=fast", interval=args.interval
        )
        arms: dict[str, Any] = {
            "without": None,
            "empty plugin": _EmptyPlugin(),
            "lifecycle": plugin,
        }
        times: dict[str, list[float]] = {name: [] for name in arms}
        flushes: list[float] = []
        salt = 0
        for round_ in range(args.repeat):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))  # no order bias
            for name in order:
                if arms[name] is not None:
                    client.register_plugin(arms[name])
                salt += 1
                times[name].append(_timed(client, args.tasks, salt))
                if arms[name] is plugin:
                    t = time.perf_counter()
                    plugin.flush()
                    flushes.append(time.perf_counter() - t)
                if arms[name] is not None:
                    client.unregister_scheduler_plugin(arms[name].name)
        plugin.close_writer()
    base = statistics.median(times["without"])
    for name, measured in times.items():
        q = statistics.quantiles(measured, n=4) if len(measured) > 1 else [measured[0]] * 3
        median = statistics.median(measured)
        print(
            f"{args.tasks}-task graph, {name:12}: median {median * 1e3:4.0f} ms"
            f" (quartiles {q[0] * 1e3:.0f}–{q[2] * 1e3:.0f}), ratio {median / base:.2f}"
        )
    print(f"flush() after the result: median {statistics.median(flushes) * 1e3:.0f} ms")
    print(f"runs recorded: {len(plugin.run_ids)} (target: lifecycle ≤ 1.10× without)")


if __name__ == "__main__":
    main()
