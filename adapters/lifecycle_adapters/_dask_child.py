"""The process a Python call runs in under the ``dask`` adapter: ``python
.../lifecycle_adapters/_dask_child.py IN OUT`` (a script, not ``-m``: no package import at
start-up), started by the Dask task on the worker.

Reads the pickled ``(callable, args, kwargs)`` from ``IN`` (pickled by the engine with
``cloudpickle``, so functions of a script run as ``__main__`` travel by value), calls it, and
writes ``("ok", value)`` or ``("error", message, traceback)`` to ``OUT``. What the call prints
is this process's stdout/stderr, which the Dask task forwards as log lines; a traceback is
printed to stderr. Exit code 0 on success, 1 on failure.

Start-up is most of a small container's cost, so this imports as little as it can. A callable
whose code uses anyio (``anyio`` was imported while unpickling it) runs under ``anyio.run``: a
coroutine function awaited, a sync one in an anyio worker thread, so that
``anyio.from_thread.check_cancelled()`` works in it as under the ``inprocess`` adapter (here it
never raises: stopping is a signal to this whole process). Any other callable is called
directly, and a coroutine it returns is run by ``asyncio.run`` (anyio and asyncio cost 40–60 ms
of imports here, against ~11 ms for the interpreter itself).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


async def _await(value: Any) -> Any:
    return await value


async def _in_anyio(fn: Any, args: Any, kwargs: Any) -> Any:
    import functools  # noqa: PLC0415  (only for callables that use anyio: see the docstring)
    import inspect  # noqa: PLC0415

    import anyio.to_thread  # noqa: PLC0415

    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    value = await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine
        value = await value
    return value


def _call(fn: Any, args: Any, kwargs: Any) -> Any:
    if "anyio" in sys.modules:
        import anyio  # noqa: PLC0415

        return anyio.run(_in_anyio, fn, args, kwargs)
    value = fn(*args, **kwargs)
    if hasattr(value, "__await__"):
        import asyncio  # noqa: PLC0415

        value = asyncio.run(_await(value))
    return value


def _limit_self() -> None:
    """Die with the worker (``PR_SET_PDEATHSIG``), and hold ``RLIMIT_AS`` to the container's
    ``memory_limit``: what ``_dask_worker`` leaves to this process (it spawns it without a
    ``preexec_fn``, which would fork the whole worker)."""
    import os  # noqa: PLC0415  (kept next to its only use, like the others here)

    parent = os.environ.pop("LIFECYCLE_DASK_PARENT", None)
    limit = os.environ.pop("LIFECYCLE_DASK_MEMORY_LIMIT", None)
    if sys.platform == "linux" and parent is not None:
        import ctypes  # noqa: PLC0415
        import signal  # noqa: PLC0415

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != int(parent):  # the worker died before the line above
            os._exit(137)
    if limit is not None:
        import resource  # noqa: PLC0415

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


def main(argv: list[str]) -> int:
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).parent.resolve():
        del sys.path[0]  # run as a script: its directory (with a ``dask.py``) shadows packages
    from lifecycle._call_outcome import write_error, write_value  # noqa: PLC0415  (path first)

    _limit_self()
    inp, out = Path(argv[1]), Path(argv[2])
    try:
        fn, args, kwargs = pickle.loads(inp.read_bytes())
        value = _call(fn, args, kwargs)
    except BaseException as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            out.write_bytes(pickle.dumps(("ok", None)))
            return 0
        return write_error(out, exc)
    return write_value(out, value)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
