"""Record a Prefect 3 flow as a lifecycle run with Prefect's own state hooks (issue 13).

    .venv/bin/python examples/prefect_hooks.py [STORE_URL]

The flow decides at run time how many tasks it submits, one task is retried, one fails and its
dependent never starts. Prefect runs it on its local ephemeral API (no server to start).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from lifecycle_adapters.prefect import LifecycleHooks
from prefect import flow, task

import lifecycle

STORE = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'runs.db'}"
hooks = LifecycleHooks(STORE, dialect="datatailr")
tries = {"flaky": 0}


@task(**hooks.task)
def load(part: int) -> int:
    return part * 10


@task(retries=1, **hooks.task)
def flaky() -> str:
    tries["flaky"] += 1
    if tries["flaky"] == 1:
        raise ConnectionError("the warehouse hung up")
    return "ok"


@task(**hooks.task)
def publish(total: int) -> None:
    raise PermissionError(f"cannot publish {total}")


@task(**hooks.task)
def notify(_: object) -> None: ...


@flow(**hooks.flow)
def nightly(parts: int) -> list[Any]:
    loaded = [load.submit(p) for p in range(parts)]
    retried = flaky.submit()
    published = publish.submit(sum(f.result() for f in loaded))
    never = notify.submit(published)  # never starts: publish failed
    return [*loaded, retried, published, never]  # Prefect: Failed, as one of them failed


def main() -> None:
    nightly(3, return_state=True)
    hooks.raise_errors()  # what lifecycle refused, if anything
    with lifecycle.Runs(STORE) as runs:
        view = runs.get(hooks.run_ids[-1])
        print(f"run {view.id} {view.name}: {view.state}")
        for name, c in sorted(view.containers.items()):
            print(f"  {name:14} {c.state:10} attempt {c.attempt}  {c.reason or ''}")
    hooks.close()


if __name__ == "__main__":
    main()
