"""``lifecycle run``: run a workflow on this machine, with live progress.

``TARGET`` names the code:

- ``path/to/file.py`` or ``path/to/file.py:NAME`` — a script (loaded as a module named after the
  file, with its folder on ``sys.path``, so its ``if __name__ == "__main__"`` block does not run);
- ``package.module`` or ``package.module:NAME`` — an importable module;
- ``NAME`` — a workflow already in the store: its code is loaded from where its latest run
  recorded it (``function`` and ``file``), as reruns do.

``NAME`` after the colon is the variable (``pipeline``) or the workflow's name (``numbers``); it
can be left out when the module defines one workflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._base import (
    CliError,
    Settings,
    configure_logging,
    default_store_url,
    normalise_store_url,
    open_runs,
    run_async,
    settings,
    sqlite_path,
)
from ._model import find_job, requested
from ._render import badge, console, fmt_duration, print_json, safe

if TYPE_CHECKING:
    from types import ModuleType

    from lifecycle._stores import RunStore
    from lifecycle._views import RunView
    from lifecycle._workflow import WorkflowFunction

__all__ = ["load_recorded", "run", "store_for_sdk", "summarise"]


def store_for_sdk(cfg: Settings) -> str | RunStore:
    """The store as the workflow SDK takes it: a URL (never relative), or a store object."""
    if cfg.store is not None and not isinstance(cfg.store, str):
        return cfg.store
    url = normalise_store_url(cfg.store) if cfg.store else default_store_url()
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return url


def _load_file(path: Path, module: str | None = None) -> ModuleType:
    """Import a script as module ``module`` (default: the file's stem), its folder on the path."""
    name = module or path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.BadParameter(f"cannot load {path} as Python code", param_hint="TARGET")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, Exception):
            raise _cannot_load(str(path), exc) from exc
        raise
    return loaded


def _cannot_load(what: str, exc: Exception) -> CliError:
    """One line for user code that failed to load: what, the error, and where it was raised."""
    from lifecycle._workflow._dag import where

    message = " ".join(str(exc).split()) or "(no message)"
    return CliError(f"cannot load {what}: {type(exc).__name__}: {message}{where(exc)}")


def load_recorded(recorded: dict[str, Any]) -> None:
    """Make the code a workflow's runs recorded (``function``, ``file``) loaded in this process,
    so the SDK's ``find_workflow`` finds it: import its module, or, when that module is not
    importable from here (a script run from another folder), load the recorded file under the
    module's name."""
    function = str(recorded.get("function") or "")
    file = str(recorded.get("file") or "")
    module = function.rpartition(".")[0]
    if not module or module == "__main__" or module in sys.modules:
        return  # __main__ scripts are loaded from their file by the SDK itself
    try:
        importlib.import_module(module)
    except ImportError:
        if file and Path(file).is_file():
            _load_file(Path(file), module)
    except Exception as exc:
        raise _cannot_load(module, exc) from exc


def _workflows_of(module: ModuleType) -> dict[str, WorkflowFunction]:
    from lifecycle._workflow import WorkflowFunction

    return {
        attr: value for attr, value in vars(module).items() if isinstance(value, WorkflowFunction)
    }


def _pick(module: ModuleType, name: str, target: str) -> WorkflowFunction:
    found = _workflows_of(module)
    if name:
        if name in found:
            return found[name]
        by_name = [w for w in found.values() if w.name == name]
        if by_name:
            return by_name[0]
        raise click.BadParameter(
            f"{target}: no workflow {name!r} (workflows: {', '.join(found) or 'none'})",
            param_hint="TARGET",
        )
    unique = {id(w): w for w in found.values()}
    if len(unique) == 1:
        return next(iter(unique.values()))
    if not unique:
        raise click.BadParameter(f"{target} defines no @workflow", param_hint="TARGET")
    raise click.BadParameter(
        f"{target} defines {len(unique)} workflows: pick one with "
        f"{target}:NAME ({', '.join(found)})",
        param_hint="TARGET",
    )


def _resolve(target: str, store: str | RunStore) -> WorkflowFunction:
    head, colon, name = target.partition(":")
    if head.endswith(".py") or Path(head).is_file():
        path = Path(head).expanduser().resolve()
        if not path.is_file():
            raise click.BadParameter(f"{head} does not exist", param_hint="TARGET")
        return _pick(_load_file(path), name, head)
    if colon or "." in head:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` would
        try:
            module = importlib.import_module(head)
        except ModuleNotFoundError as exc:
            if exc.name is None or not head.startswith(exc.name):
                raise _cannot_load(head, exc) from exc  # the module imports something missing
            raise click.BadParameter(f"cannot import {head}: {exc}", param_hint="TARGET") from exc
        except Exception as exc:
            raise _cannot_load(head, exc) from exc
        return _pick(module, name, head)
    return _from_store(target, store)


def _from_store(name: str, store: str | RunStore) -> WorkflowFunction:
    """Workflow ``name`` from the code its latest run recorded."""
    from lifecycle._workflow._define import find_workflow

    cfg = Settings(store=store)

    async def latest() -> dict[str, Any]:
        async with open_runs(cfg) as runs:
            rows = await find_job(runs, name)
            req = await requested(runs, rows[0].run_id)
            spec = req.params.get("workflow")
            if not isinstance(spec, dict):
                raise click.BadParameter(
                    f"job {name!r} is not a workflow; `lifecycle run` runs workflows",
                    param_hint="TARGET",
                )
            return spec

    recorded = run_async(latest)
    load_recorded(recorded)
    return find_workflow(name, recorded)


def summarise(view: RunView) -> None:
    """One closing line: the run, its state, how long it took, and why it failed."""
    from rich.text import Text

    line = Text.assemble("run ", (str(view.run_id), "bold"), " of ", safe(view.name, "bold"), " ")
    line.append_text(badge(view.state, view.outcome))
    if view.warning:
        line.append(" ⚠", style="bold yellow")
    line.append(f" in {fmt_duration(view.started_at or view.created_at, view.ended_at)}")
    if view.reason:
        line.append(": ")
        line.append_text(safe(view.reason, "red"))
    console().print(line)


@click.command(short_help="Run a workflow on this machine, with live progress.")
@click.argument("target")
@click.option(
    "--adapter",
    metavar="NAME",
    default="inprocess",
    show_default=True,
    help="Where tasks run: inprocess (threads of this process), subprocess (OS processes), or "
    "another installed adapter.",
)
@click.option(
    "--max-parallel", metavar="N", type=click.IntRange(min=1), help="Run at most N tasks at once."
)
@click.option("--no-progress", is_flag=True, help="Do not show progress while it runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the finished run's view as JSON.")
def run(
    *, target: str, adapter: str, max_parallel: int | None, no_progress: bool, as_json: bool
) -> None:
    """Run the workflow TARGET on this machine and wait for it; exit 0 if it completed, 1 if it
    failed or was stopped.

    \b
    TARGET is one of
      path/to/file.py[:NAME]     a script that defines workflows
      package.module[:NAME]      an importable module
      NAME                       a workflow already in the store (its recorded code)
    NAME is the variable or the workflow's name; it may be left out when there is one workflow.
    """
    cfg = settings()
    as_json = as_json or cfg.json
    configure_logging(cfg.verbose)
    store = store_for_sdk(cfg)
    wf = _resolve(target, store)
    view = wf(
        local_run=True,
        store=store,
        adapter=adapter,
        max_parallel=max_parallel,
        progress=not (no_progress or as_json),
    )
    if as_json:
        print_json(view)
    else:
        summarise(view)
    if view.outcome != "succeeded":
        raise click.exceptions.Exit(1)
