"""Tasks in OS processes: the ``subprocess`` adapter, taught to run Python calls.

The engine's ``subprocess`` adapter runs *commands*; a workflow task is a Python *call* whose
return value is its result. :class:`TaskProcessAdapter` bridges the two: for each task it pickles
the call (the task by reference, its inputs by value — upstream results already resolved by the
engine) into a temporary file, has the wrapped adapter run ``python -m
lifecycle._workflow._worker IN OUT`` (so logs, exit codes, ``memory_limit`` → ``OutOfMemory``,
timeouts and stopping are the subprocess adapter's), and reads the return value — or the
exception, with its traceback — back from ``OUT``.

Task functions must be importable by the worker: defined at module level in a module on
``sys.path`` (the worker gets this process's ``sys.path``), or in the script run as
``__main__`` (re-loaded as ``__mp_main__``, as ``multiprocessing`` does, so its
``if __name__ == "__main__":`` block does not run again).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from typing import Any

import anyio

from lifecycle import events as ev
from lifecycle._engine import Adapter, ContainerSpec, Finished, Report, load_adapter

__all__ = ["MAIN_ENV", "TaskProcessAdapter", "workflow_adapter"]

MAIN_ENV = "LIFECYCLE_WORKFLOW_MAIN"
"""The environment variable that tells the worker which script to load as ``__main__``."""


class TaskProcessAdapter(Adapter):
    """Runs ``call`` containers in a fresh Python process each, through a command adapter."""

    name = "subprocess"
    kinds = frozenset({"call"})

    def __init__(self, inner: Adapter | str = "subprocess") -> None:
        self.inner = load_adapter(inner)
        self._own = isinstance(inner, str)

    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        try:
            payload = pickle.dumps((spec.call, spec.args, spec.kwargs), protocol=5)
        except Exception as exc:
            text = f"task {spec.name!r} cannot be sent to another process: {exc}"
            await report(ev.LogRecorded(level="error", stream="system", text=text))
            return Finished(ev.ExecutionFailed(error=text))
        env = {**spec.env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        main = _main_script(spec.call)
        if main:
            env[MAIN_ENV] = main
        with tempfile.TemporaryDirectory(prefix="lifecycle-task-") as tmp:
            inp, out = anyio.Path(tmp) / "in.pkl", anyio.Path(tmp) / "out.pkl"
            await inp.write_bytes(payload)
            command = (sys.executable, "-m", "lifecycle._workflow._worker", str(inp), str(out))
            finished = await self.inner.execute(
                ContainerSpec(
                    run_id=spec.run_id,
                    name=spec.name,
                    command=command,
                    env=env,
                    memory_limit=spec.memory_limit,
                ),
                report,
            )
            outcome = pickle.loads(await out.read_bytes()) if await out.exists() else None
        return _ending(finished, outcome)

    async def aclose(self) -> None:
        if self._own:
            await self.inner.aclose()


def _main_script(call: Any) -> str | None:
    """The script run as ``__main__``, if ``call`` is defined in it."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if getattr(call, "__module__", "") == "__main__" and isinstance(main, str):
        return os.path.abspath(main)
    return None


def _ending(finished: Finished, outcome: Any) -> Finished:
    """The task's ending from the process's and from what the worker wrote back."""
    if not isinstance(outcome, tuple) or isinstance(finished.fact, ev.OutOfMemory):
        return finished
    if outcome[0] == "ok" and isinstance(finished.fact, ev.ExecutionSucceeded):
        return Finished(finished.fact, outcome[1])
    if outcome[0] == "error":
        code = getattr(finished.fact, "exit_code", None)
        return Finished(ev.ExecutionFailed(error=outcome[1], traceback=outcome[2], exit_code=code))
    return finished


def workflow_adapter(adapter: str | Adapter) -> tuple[str | Adapter, bool]:
    """What to hand the engine for a workflow's ``adapter=``, and whether we must close it:
    ``"subprocess"`` becomes a :class:`TaskProcessAdapter`; anything else goes as it is."""
    if adapter == "subprocess":
        return TaskProcessAdapter("subprocess"), True
    return adapter, False
