"""The root command: global options, error handling, and the command tree."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from lifecycle import __version__
from lifecycle._errors import LifecycleError

from . import _base
from ._actions import abort, demo, rerun
from ._base import CliError, Settings, normalise_store_url
from ._check import check
from ._diagram import diagram
from ._jobs import job
from ._logs import log
from ._rebuild import rebuild
from ._render import neutralise
from ._replay import export, replay
from ._run import run

__all__ = ["cli", "main"]

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that left


class _Root(click.Group):
    """Turns the library's errors into one ``error: …`` line and exit code 1, never a
    traceback; an interrupt (Ctrl-C while following a log) exits 130 quietly."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order they are added in: most used first

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LifecycleError as exc:
            message = neutralise(" ".join(str(exc).split()), multiline=False)
            raise CliError(message or type(exc).__name__) from exc
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(
    cls=_Root,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 ok; 1 a run failed, a run's log does not fold (replay, rebuild), "
    "the read model could not be wholly rebuilt (rebuild: a run's dialect is not registered "
    "here), a job, run, task or dialect was not found, or the store could not be opened; "
    "2 usage error; 130 interrupted.",
)
@click.option(
    "--store",
    metavar="URL",
    envvar="LIFECYCLE_STORE",
    show_envvar=True,
    help="The run store: sqlite:///path/to/runs.db, memory://, or a plain path to an SQLite "
    "file. Default: ~/.local/share/lifecycle/runs.db.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts (as --json on each command)."
)
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Show the engine's log on stderr while running workflows (-v info, -vv debug).",
)
@click.version_option(__version__, "-V", "--version", prog_name="lifecycle")
@click.pass_context
def cli(ctx: click.Context, store: str | None, as_json: bool, verbose: int) -> None:
    """lifecycle: the runs of your workflows and jobs, their state, history and logs.

    \b
    lifecycle job ls                     every job, its state and its last 10 runs
    lifecycle job get NAME               a job's tasks, edges, schedule and versions
    lifecycle job runs NAME              a job's run history
    lifecycle log read NAME [--follow]   logs of a run (the latest, or --run ID)
    lifecycle run FILE.py[:WORKFLOW]     run a workflow here, with live progress
    lifecycle rerun | abort RUN_ID       act on a run
    lifecycle export | replay FILE       the event log out; views back from one
    lifecycle rebuild                    the runs read model, folded again from the log
    lifecycle diagram DIALECT            a dialect's state machine (Mermaid)

    Colour follows the terminal; NO_COLOR=1 turns it off. Text from logs and stored names is
    shown as data: control characters appear escaped (\\x1b), markup is never interpreted.
    """
    cfg = ctx.ensure_object(Settings)
    if store is not None and store.strip():
        cfg.store = normalise_store_url(store.strip())
    if as_json:
        cfg.json = True
    cfg.verbose = max(cfg.verbose, verbose)


for command in (job, log, run, rerun, abort, export, replay, rebuild, check, diagram, demo):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``lifecycle`` console script. Exits with the command's exit code."""
    _base.STANDALONE = True
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="lifecycle")
    except BrokenPipeError:  # `lifecycle log read x | head`: the reader left; that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_BROKEN_PIPE) from None
