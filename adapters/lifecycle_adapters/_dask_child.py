"""The process a Python call runs in under the ``dask`` adapter: ``python -m
lifecycle_adapters._dask_child IN OUT``, started by the Dask task on the worker.

Reads the pickled ``(callable, args, kwargs)`` from ``IN`` (pickled by the engine with
``cloudpickle``, so functions of a script run as ``__main__`` travel by value), calls it, and
writes ``("ok", value)`` or ``("error", message, traceback)`` to ``OUT``. A coroutine function
is awaited; a sync callable runs in an anyio worker thread, so that
``anyio.from_thread.check_cancelled()`` works in it as under the ``inprocess`` adapter (here it
never raises: stopping is a signal to this whole process). What the call prints is this
process's stdout/stderr, which the Dask task forwards as log lines; a traceback is printed to
stderr. Exit code 0 on success, 1 on failure.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["main"]


async def _call(fn: Any, args: Any, kwargs: Any) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    value = await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine
        value = await value
    return value


def main(argv: list[str]) -> int:
    inp, out = Path(argv[1]), Path(argv[2])
    try:
        fn, args, kwargs = pickle.loads(inp.read_bytes())
        value = anyio.run(_call, fn, args, kwargs)
    except BaseException as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            out.write_bytes(pickle.dumps(("ok", None)))
            return 0
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        sys.stderr.flush()
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        out.write_bytes(pickle.dumps(("error", message, tb)))
        return 1
    try:
        data = pickle.dumps(("ok", value), protocol=5)
    except Exception as exc:
        message = f"the result ({type(value).__name__}) cannot be serialized: {exc}"
        sys.stderr.write(message + "\n")
        out.write_bytes(pickle.dumps(("error", message, "")))
        return 1
    out.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
