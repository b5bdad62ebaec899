"""The root command: global options, error handling, and the command tree.

Subcommands are loaded when they run, not before: ``lifecycle --help`` imports Click and this
package only (no store, engine, structlog, Rich or msgspec), so it answers at once. A command
module is added to ``COMMANDS`` with its short help, which the root help shows without importing
it (a test checks that each entry matches its command's own short help).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Final

import click

from lifecycle import __version__
from lifecycle._errors import LifecycleError

from . import _base
from ._base import CliError, Settings, normalise_store_url

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: Final[dict[str, tuple[str, str, str]]] = {
    # name: (module, attribute, short help): in the order help lists them, most used first
    "job": ("._jobs", "job", "Jobs: workflows and named groups of runs."),
    "log": ("._logs", "log", "Logs of runs and their tasks."),
    "run": ("._run", "run", "Run a workflow on this machine, with live progress."),
    "deploy": ("._deploy", "deploy", "Record a workflow and build it: Ready, or Created."),
    "scheduler": (
        "._scheduler",
        "scheduler",
        "Fire deployed jobs at their due times (runs until stopped).",
    ),
    "ui": ("._ui", "ui", "Serve the dashboard: jobs, runs, DAGs and live logs."),
    "rerun": ("._actions", "rerun", "Start a new run from an ended one."),
    "abort": ("._actions", "abort", "Stop a run and its active tasks."),
    "export": ("._replay", "export", "The event log as JSON Lines."),
    "replay": ("._replay", "replay", "Views from a log; its first invalid facts."),
    "rebuild": ("._rebuild", "rebuild", "Recompute the runs read model from the event log."),
    "check": ("._check", "check", "Check the store file for damage."),
    "diagram": ("._diagram", "diagram", "A dialect's state machine (Mermaid, table, JSON)."),
    "demo": ("._actions", "demo", "Run the demo that `make demo` runs."),
}
"""The lazily loaded subcommands. (Commands added with ``cli.add_command`` work as well; they
are listed after these.)"""

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that left


class _Root(click.Group):
    """Loads subcommands on first use; turns the library's errors into one ``error: …`` line
    and exit code 1, never a traceback; an interrupt exits 130 quietly."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module, __package__), attr))
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS and name not in self.commands:
                rows.append((name, COMMANDS[name][2]))  # shown without importing it
            else:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LifecycleError as exc:
            message = neutralise(" ".join(str(exc).split()), multiline=False)
            raise CliError(message or type(exc).__name__) from exc
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click's own, and a reader that left (`main` exits 141 for it)
        except Exception as exc:
            # a failure no command translated (a bug, or a case not foreseen): still one line;
            # -vv shows the traceback for a report
            cfg = ctx.find_object(Settings)
            if cfg is not None and cfg.verbose >= 2:
                traceback.print_exc()
            message = neutralise(" ".join(str(exc).split()), multiline=False)
            raise CliError(
                f"unexpected {type(exc).__name__}: {message or '(no message)'} "
                "(run with -vv for the traceback)"
            ) from exc


def neutralise(text: str, *, multiline: bool = True) -> str:
    from ._render import neutralise as escape  # only when there is an error

    return escape(text, multiline=multiline)


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
    lifecycle ui [--read-only]           the dashboard in a browser (extra lifecycle[ui])
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


def main(argv: Sequence[str] | None = None) -> None:
    """The ``lifecycle`` console script. Exits with the command's exit code."""
    _base.STANDALONE = True
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="lifecycle")
    except KeyboardInterrupt:  # outside a command (parsing, loading one): as quiet as inside
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:  # `lifecycle log read x | head`: the reader left; that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_BROKEN_PIPE) from None
