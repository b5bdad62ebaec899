"""``@workflow``: a function whose body wires tasks together, run with ``local_run=True``.

``@workflow(name="daily_sales_report")``, ``@workflow("Complex Pipeline")`` (the seed writes
both) and bare ``@workflow`` (the function's name) all work. The decorated object:

- ``wf(local_run=True)`` builds the DAG, registers its version, runs it on this machine through
  the engine (``inprocess`` adapter by default, ``adapter="subprocess"`` for OS processes) and
  returns the final :class:`~lifecycle.RunView`; a failed run is returned, not raised (its state
  says ``Failed``). Progress is shown unless ``progress=False``.
- ``wf()`` without ``local_run`` raises: there is no remote platform to deploy to; ``deploy()``
  registers the definition without running it.
- ``await wf.run_async(store=...)`` is the same run for async code (asyncio or trio).
- ``wf.build()`` returns the :class:`Dag`; ``wf.to_mermaid()`` draws it.

Workflows defined in this process are kept by name, so ``Workflow(name).rerun(...)`` finds the
code to run; in another process it is imported from the module (or script file) runs record.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from lifecycle._runs import AsyncRuns
from lifecycle._schedule import as_schedule

from ._dag import Dag, WorkflowError, build_dag
from ._progress import Progress
from ._store import StoreLike, call_blocking, open_runs
from ._version import register_version

if TYPE_CHECKING:
    from lifecycle._views import RunView

__all__ = ["WorkflowFunction", "find_workflow", "workflow"]

_WORKFLOWS: dict[str, WorkflowFunction] = {}


class WorkflowFunction:
    """A ``@workflow`` function (see the module docstring)."""

    def __init__(
        self, fn: Callable[[], Any], name: str | None = None, schedule: object = None
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@workflow decorates a function, not {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name.strip():
            raise WorkflowError("a workflow's name must not be empty")
        self.schedule = as_schedule(schedule)
        self.function = f"{fn.__module__}.{fn.__qualname__}"
        try:
            self.file = inspect.getsourcefile(fn) or ""
        except TypeError:
            self.file = ""
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _WORKFLOWS[self.name] = self

    def build(self) -> Dag:
        """Run the body with task calls recorded: the DAG. Raises :class:`WorkflowError`."""
        return build_dag(
            self.name, self.fn, function=self.function, file=self.file, schedule=self.schedule
        )

    def to_mermaid(self) -> str:
        """The DAG as a Mermaid flowchart, like the seed's diagrams."""
        return self.build().to_mermaid()

    def __call__(
        self,
        local_run: bool = False,
        *,
        store: StoreLike = None,
        adapter: Any = "inprocess",
        max_parallel: int | None = None,
        progress: bool | Progress | None = None,
    ) -> RunView:
        """Run the workflow on this machine (``local_run=True``) and wait for it to end.

        ``store``: where the run is recorded (default: ``LIFECYCLE_STORE`` or the default path);
        ``adapter``: ``"inprocess"`` (default), ``"subprocess"``, ``"dask"`` (a Dask cluster:
        ``LIFECYCLE_DASK_SCHEDULER``, else a ``LocalCluster`` for the run) or an adapter object;
        ``max_parallel``: how many tasks run at once (default: the engine's); ``progress``:
        ``False`` silences the progress display, ``True``/``None`` shows it on stdout (a
        :class:`Progress` object shows it where and how that says).
        """
        if not local_run:
            raise WorkflowError(
                f"workflow {self.name!r}: there is no remote platform to deploy to; run it on "
                "this machine with local_run=True (or register it with .deploy())"
            )
        dag = self.build()

        async def main(runs: AsyncRuns) -> RunView:
            shown = True if progress is None else progress
            return await _run_dag(runs, dag, adapter, max_parallel, shown)

        return call_blocking(store, main)

    async def run_async(
        self,
        store: StoreLike = None,
        *,
        adapter: Any = "inprocess",
        max_parallel: int | None = None,
        progress: bool | Progress = False,
    ) -> RunView:
        """``local_run=True`` for async code: the same run, awaited on the current loop."""
        dag = self.build()
        async with open_runs(store) as runs:
            return await _run_dag(runs, dag, adapter, max_parallel, progress)

    def deploy(self, *, store: StoreLike = None) -> int:
        """Register the current definition without running it; its ``job_version``."""
        dag = self.build()
        return call_blocking(store, lambda runs: register_version(runs.store, dag))

    def __repr__(self) -> str:
        return f"<workflow {self.name!r} ({self.function})>"


async def _run_dag(
    runs: AsyncRuns, dag: Dag, adapter: Any, max_parallel: int | None, progress: bool | Progress
) -> RunView:
    from ._run import execute  # noqa: PLC0415  (the engine is imported only to run)

    version = await register_version(runs.store, dag)
    return await execute(
        runs,
        dag,
        job_version=version,
        adapter=adapter,
        max_parallel=max_parallel,
        progress=progress,
    )


def deployed_workflow(
    name: str, recorded: dict[str, Any], *, fresh: bool = False
) -> WorkflowFunction:
    """The code a deploy recorded (``function`` = ``module.qualname``, ``file``), loaded as that
    module — imported, or its file executed under the module's name — never a workflow of the
    same name that this process defines otherwise (a script run as ``__main__``). ``fresh``:
    load it again even if this process has it (its file changed since: a redeploy). Raises
    :class:`WorkflowError`."""
    function = str(recorded.get("function") or "")
    file = str(recorded.get("file") or "")
    module, _, qualname = function.rpartition(".")
    if not module or module == "__main__":
        return find_workflow(name, recorded)
    try:
        if fresh:
            sys.modules.pop(module, None)
        if module not in sys.modules:
            _import(module, file)
        found: Any = sys.modules[module]
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise WorkflowError(
            f"cannot load the deployed code of workflow {name!r} ({function}, "
            f"{file or 'no file'}): {exc!r}"
        ) from exc
    if not isinstance(found, WorkflowFunction):
        raise WorkflowError(f"{function} is not a @workflow (it is {type(found).__name__})")
    return found


def _import(module: str, file: str) -> None:
    """Import ``module``; a script deployed or run from its own folder (not importable from
    here) is loaded from its recorded ``file`` under the module's name."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module or not (file and Path(file).is_file()):
            raise
        _load_file(module, file)


def _load_file(module: str, file: str) -> None:
    """Execute ``file`` as module ``module``, its folder on ``sys.path`` (as running it would)."""
    folder = str(Path(file).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module, file)
    if spec is not None and spec.loader is not None:
        loaded = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(spec.name, loaded)
        spec.loader.exec_module(loaded)


@overload
def workflow(fn: Callable[[], Any], /) -> WorkflowFunction: ...
@overload
def workflow(
    name: str | None = None, /, *, schedule: Any = None
) -> Callable[[Callable[[], Any]], WorkflowFunction]: ...
@overload
def workflow(
    *, name: str | None = None, schedule: Any = None
) -> Callable[[Callable[[], Any]], WorkflowFunction]: ...
def workflow(
    fn_or_name: Callable[[], Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    schedule: Any = None,
) -> WorkflowFunction | Callable[[Callable[[], Any]], WorkflowFunction]:
    """Make a function a workflow: ``@workflow(name=...)``, ``@workflow("name")`` or
    ``@workflow``. ``schedule`` — a cron string or a :class:`~lifecycle.Schedule` — is checked
    and recorded with the definition (``lifecycle job get`` shows it and its next due times);
    nothing fires it yet: there is no scheduler (issue 16)."""
    if callable(fn_or_name):
        return WorkflowFunction(fn_or_name, name)
    if fn_or_name is not None and name is not None and fn_or_name != name:
        raise WorkflowError(f"workflow named twice: {fn_or_name!r} and name={name!r}")
    chosen = fn_or_name or name

    checked = as_schedule(schedule)  # a bad schedule fails at the decorator, not at a run

    def decorate(fn: Callable[[], Any]) -> WorkflowFunction:
        return WorkflowFunction(fn, chosen, checked)

    return decorate


def find_workflow(name: str, recorded: dict[str, Any]) -> WorkflowFunction:
    """The code of workflow ``name``: defined in this process, else imported from what its runs
    recorded (``function`` = ``module.qualname``; a script run as ``__main__`` is loaded from
    its ``file`` under another module name, so its ``if __name__ == "__main__"`` block does not
    run). Raises :class:`WorkflowError` when it cannot be found."""
    found = _WORKFLOWS.get(name)
    if found is not None:
        return found
    function = str(recorded.get("function") or "")
    file = str(recorded.get("file") or "")
    module, _, _qualname = function.rpartition(".")
    try:
        if module and module != "__main__":
            _import(module, file)
        elif file and Path(file).is_file():
            _load_file("__lifecycle_workflow__", file)
    except Exception as exc:
        raise WorkflowError(
            f"cannot load the code of workflow {name!r} ({function or 'unknown'}, "
            f"{file or 'no file'}): {exc!r}"
        ) from exc
    found = _WORKFLOWS.get(name)
    if found is None:
        raise WorkflowError(
            f"cannot find the code of workflow {name!r} to run it again: define or import it in "
            f"this process first (runs recorded {function or 'no function'} in {file or '?'})"
        )
    return found
