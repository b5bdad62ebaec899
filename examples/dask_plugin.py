"""Record a Dask computation as lifecycle runs, then read them back (issue 13).

    .venv/bin/python examples/dask_plugin.py [STORE_URL]

A ``LocalCluster`` with two worker processes computes a small graph with a failing task; the
``LifecyclePlugin`` records one run with a container per key, and the
run ends by the datatailr dialect's policy (a failed task fails the run).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import distributed
from dask.delayed import delayed
from lifecycle_adapters.dask import LifecyclePlugin

import lifecycle


def inc(x: int) -> int:
    return x + 1


def broken(x: int) -> int:
    raise ValueError(f"cannot load partition {x}")


def main() -> None:
    store = (
        sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'runs.db'}"
    )
    with (
        distributed.LocalCluster(n_workers=2, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        plugin = LifecyclePlugin(store, dialect="datatailr", name="partitions")
        client.register_plugin(plugin)
        parts = [delayed(inc, pure=True)(i) for i in range(8)]
        bad = delayed(broken, pure=True)(parts[3])
        futures = client.compute([*parts, bad])
        distributed.wait(futures)
        plugin.flush()  # everything recorded; raises what lifecycle refused, if anything
        with lifecycle.Runs(store) as runs:
            view = runs.get(plugin.run_ids[-1])
            print(f"run {view.id} {view.name}: {view.state} ({view.reason})")
            for name, c in sorted(view.containers.items()):
                print(f"  {name[:40]:40} {c.state:10} attempt {c.attempt}")
        plugin.close_writer()


if __name__ == "__main__":
    main()
