"""``lifecycle ui``: serve the dashboard (the ``lifecycle[ui]`` extra) on this machine."""

from __future__ import annotations

import os

import click

from ._base import CliError, normalise_store_url, open_runs, run_async, settings

__all__ = ["ui"]

TOKEN_ENV = "LIFECYCLE_UI_TOKEN"


@click.command(short_help="Serve the dashboard: jobs, runs, DAGs and live logs.")
@click.option(
    "--store",
    metavar="URL",
    help="The run store (as `lifecycle --store`; default: the root option, $LIFECYCLE_STORE, "
    "or ~/.local/share/lifecycle/runs.db).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Anything but 127.0.0.1 or ::1 lets other machines in "
    "(with the token).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The port (0: a free one).",
)
@click.option("--read-only", is_flag=True, help="Refuse every action (run, stop, rerun).")
def ui(store: str | None, host: str, port: int, read_only: bool) -> None:
    """Serve the dashboard until interrupted and print the address to open, with its token
    (http://127.0.0.1:PORT/?token=...; the browser keeps it in a cookie).

    The pages: every job (state, schedule, last 10 runs, weekly activity), one job (its DAG,
    run history, definition), one run (its tasks, logs live while it runs, timeline, results).
    Actions (run a deployed workflow, stop a run, rerun) need the token and are refused with
    --read-only; they are recorded in the run's facts (StopRequested by "ui").
    $LIFECYCLE_UI_TOKEN sets the token instead of a random one.
    """
    try:
        from lifecycle._ui import serve
    except ImportError as exc:
        raise CliError(
            f"the dashboard needs the ui extra: pip install 'lifecycle[ui]' ({exc.name} is missing)"
        ) from exc
    cfg = settings()
    if store is not None and store.strip():
        cfg.store = normalise_store_url(store.strip())

    async def check() -> None:  # a missing store or bad URL: one line now, not a server error
        async with open_runs(cfg, write=not read_only):
            pass

    run_async(check)
    url = cfg.url

    def announce(address: str) -> None:
        mode = " (read-only)" if read_only else ""
        click.echo(f"lifecycle ui on {url}{mode}: open {address}", err=True)

    try:
        serve(
            cfg.store if cfg.store is not None else url,
            host=host,
            port=port,
            token=os.environ.get(TOKEN_ENV) or None,
            read_only=read_only,
            announce=announce,
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
