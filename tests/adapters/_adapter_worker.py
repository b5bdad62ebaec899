"""An engine stand-in in a process of its own: it runs one container through the ``subprocess``
adapter and prints every line the container writes, for the test that kills it with SIGKILL.
Usage: ``python _adapter_worker.py PYTHON_CODE``."""

from __future__ import annotations

import sys

import anyio
from lifecycle_adapters.local_process import SubprocessAdapter

from lifecycle import events as ev
from lifecycle._engine import ContainerSpec


async def main(code: str) -> None:
    async def report(fact: ev.Fact) -> None:
        if isinstance(fact, ev.LogRecorded):
            print(fact.text, flush=True)

    spec = ContainerSpec(run_id=1, name="c", command=(sys.executable, "-c", code))
    await SubprocessAdapter().execute(spec, report)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
