"""The ``dask`` adapter against plain Dask on the same cluster (issue 15).

    .venv/bin/python benchmarks/bench_dask.py [--tasks 200] [--repeat 3] [--threads 2]
    .venv/bin/python benchmarks/bench_dask.py --tasks 1000 --repeat 1     # the issue's size

One ``LocalCluster`` (2 worker processes × ``--threads`` threads) serves four arms, alternated
over ``--repeat`` rounds, each timed end to end:

- ``delayed``: the fan-out/fan-in graph (one source, ``tasks - 2`` no-ops taking its result, one
  sink taking all of theirs) as Dask ``delayed`` no-op functions: what Dask itself costs;
- ``delayed + process``: the same graph, each task running ``python -c pass`` in a child
  process: what one OS process per task costs on this cluster, with no lifecycle at all;
- ``delayed + call process``: the same, each task running the very process the ``dask``
  adapter starts for a call (``lifecycle_adapters/_dask_child.py`` on a pickled no-op): what
  the adapter's child costs, with none of its supervision and no engine;
- ``lifecycle``: the same DAG as a ``@workflow`` run through the engine with ``adapter="dask"``
  on a SQLite store (``fast``): per container, a Dask task that claims it, starts
  ``lifecycle_adapters/_dask_child.py`` (Python, cloudpickle and the unpickled call), streams
  its messages back, and the engine's facts and stored result.

Reported: each arm's best and median wall time, the ratios to ``delayed`` and to
``delayed + process``, and the per-container overhead over each, ``(arm - reference) / tasks``.
The default size is 200 tasks, because each container is a fresh Python process: at 1,000 an
arm takes tens of seconds on 2 cores (``--tasks 1000`` runs the issue's size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]  # a dependency of distributed
import distributed
import lifecycle_adapters
from dask.delayed import delayed

from lifecycle import task, workflow

_CHILD = str(Path(lifecycle_adapters.__file__).parent / "_dask_child.py")


@task()
def source() -> int:
    return 0


@task()
def noop(value: int) -> int:
    return value


@task()
def sink(*values: int) -> int:
    return len(values)


def _plain(*values: int) -> int:
    return len(values)


def _process(*values: int) -> int:
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return len(values)


_PAYLOAD = cloudpickle.dumps((_plain, (1,), {}))


def _call_process(*values: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in", Path(tmp) / "out"
        inp.write_bytes(_PAYLOAD)
        subprocess.run([sys.executable, _CHILD, str(inp), str(out)], check=True)
    return len(values)


def _delayed(client: Any, tasks: int, fn: Any, salt: int) -> float:
    t = time.perf_counter()
    first = delayed(fn, pure=False)(salt)
    middle = [delayed(fn, pure=False)(first, i) for i in range(tasks - 2)]
    client.compute(delayed(fn, pure=False)(*middle)).result()
    return time.perf_counter() - t


def _lifecycle(tasks: int, store: str, parallel: int) -> float:
    @workflow(name=f"bench_dask_{tasks}")
    def fan() -> None:
        s = source()
        sink(*[noop(s).alias(f"noop_{i}") for i in range(tasks - 2)])

    t = time.perf_counter()
    view = fan(local_run=True, store=store, adapter="dask", max_parallel=parallel, progress=False)
    took = time.perf_counter() - t
    assert view.state == "Completed", view.reason
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    args = parser.parse_args()
    store = f"sqlite:///{Path(tempfile.mkdtemp()) / 'runs.db'}?durability=fast"
    parallel = 2 * args.threads
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=args.threads, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        os.environ["LIFECYCLE_DASK_SCHEDULER"] = cluster.scheduler_address
        _delayed(client, 20, _process, -1)  # warm up the workers
        _lifecycle(10, store, parallel)
        arms = {
            "delayed": lambda salt: _delayed(client, args.tasks, _plain, salt),
            "delayed + process": lambda salt: _delayed(client, args.tasks, _process, salt),
            "delayed + call process": lambda salt: _delayed(
                client, args.tasks, _call_process, salt
            ),
            "lifecycle": lambda _: _lifecycle(args.tasks, store, parallel),
        }
        times: dict[str, list[float]] = {name: [] for name in arms}
        for round_ in range(args.repeat):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))  # no order bias
            for name in order:
                times[name].append(arms[name](round_))
    best = {name: min(t) for name, t in times.items()}
    print(
        f"{args.tasks}-task fan-out/fan-in, LocalCluster 2 workers × {args.threads} threads, "
        f"max_parallel {parallel}, best of {args.repeat}:"
    )
    for name, measured in times.items():
        print(
            f"  {name:22} best {best[name]:6.2f} s  median {statistics.median(measured):6.2f} s"
            f"  ({best[name] / args.tasks * 1e3:6.2f} ms per task)"
        )
    for ref in ("delayed", "delayed + process", "delayed + call process"):
        ratio = best["lifecycle"] / best[ref]
        over = (best["lifecycle"] - best[ref]) / args.tasks * 1e3
        print(f"  lifecycle / {ref}: {ratio:.2f}× ({over:+.2f} ms per container)")


if __name__ == "__main__":
    main()
