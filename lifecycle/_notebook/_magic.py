"""``%lifecycle_runs``: the IPython line magic that opens the results explorer.

::

    %load_ext lifecycle
    %lifecycle_runs                              # no workflow selected yet
    %lifecycle_runs my-workflow                  # that workflow, default environment
    %lifecycle_runs my-workflow --env prod       # the store in LIFECYCLE_STORE_PROD
    %lifecycle_runs my-workflow --store runs.db  # any store, by URL or path
    explorer = %lifecycle_runs my-workflow       # the widget; explorer.explorer is the model

The seed's ``%dt_runs`` with the same arguments. The widget is displayed and returned; loaded
results go to the shell's user namespace and the next cell is offered to read them.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from lifecycle._errors import LifecycleError

from ._model import Explorer
from ._widget import ExplorerWidget

__all__ = ["load_ipython_extension", "parse", "runs_magic"]

_parser = argparse.ArgumentParser(
    prog="%lifecycle_runs",
    description="Explore the runs of a workflow: filter, rerun, graph, logs, results.",
    add_help=False,
    exit_on_error=False,
)
_parser.add_argument("workflow", nargs="?", help="the workflow to show")
_parser.add_argument("--env", help="an environment: the store in LIFECYCLE_STORE_<ENV>")
_parser.add_argument("--store", help="a store URL or path (instead of an environment)")
_parser.add_argument(
    "--page-size", type=int, default=25, help="runs per page of the table (default 25)"
)


def parse(line: str) -> argparse.Namespace:
    """The magic's arguments. Raises IPython's ``UsageError`` with the usage."""
    try:
        args, extra = _parser.parse_known_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError) as exc:
        raise UsageError(f"{exc}\n{_parser.format_usage()}") from exc
    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}\n{_parser.format_usage()}")
    return args


def runs_magic(shell: InteractiveShell, line: str) -> ExplorerWidget:
    """Open the explorer as ``%lifecycle_runs LINE`` asks, in ``shell``."""
    args = parse(line)
    try:
        explorer = Explorer(
            args.workflow,
            environment=args.env,
            store=args.store,
            namespace=shell.user_ns,
            set_next_input=lambda code: shell.set_next_input(code, replace=False),
            page_size=args.page_size,
        )
    except (ValueError, LifecycleError) as exc:  # an unknown workflow or environment, a bad URL
        raise UsageError(str(exc)) from exc
    return ExplorerWidget(explorer)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%lifecycle_runs`` in ``ipython`` (``%load_ext lifecycle``)."""

    def lifecycle_runs(line: str) -> Any:
        return runs_magic(ipython, line)

    lifecycle_runs.__doc__ = __doc__
    # IPython's own hints type this method through a decorator that loses its signature (IPython
    # itself ignores the same error where it calls it)
    ipython.register_magic_function(lifecycle_runs, "line", "lifecycle_runs")  # type: ignore[arg-type]
