"""``lifecycle deploy``: record a workflow and build it in a fresh process (issue 16).

Seed 000: code is uploaded, **Building**, then **Ready** — or **Created** when the build fails
("bad dependency, syntax error"), with the build log readable by ``lifecycle log read``.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import click

from ._base import CliError, configure_logging, run_async, settings
from ._render import badge, console, print_json, safe

if TYPE_CHECKING:
    from lifecycle._workflow._deploy import Deployment

__all__ = ["deploy"]


@click.command(short_help="Record a workflow and build it: Ready, or Created.")
@click.argument("target")
@click.option("--schedule", "cron", metavar="CRON", help="Run it on a schedule (cron, 5 fields).")
@click.option(
    "--timezone", metavar="ZONE", default="UTC", show_default=True, help="The schedule's zone."
)
@click.option(
    "--end",
    metavar="DATE",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The schedule's last day (in its zone).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was deployed as JSON.")
def deploy(
    *, target: str, cron: str | None, timezone: str, end: _dt.datetime | None, as_json: bool
) -> None:
    """Deploy the workflow TARGET (path/to/file.py[:NAME]): record the job and its definition
    and build it in a fresh Python process (import the file, build the DAG). Exit 0 when it is
    Ready, 1 when the build failed (Created; `lifecycle log read RUN` shows why). Deploying an
    unchanged definition again records nothing; a changed one gets a new job version.

    The schedule is shown by `lifecycle job get` with its next due times; `lifecycle scheduler`
    fires it.
    """
    from lifecycle._runs import AsyncRuns
    from lifecycle._schedule import Schedule
    from lifecycle._workflow._deploy import deploy as deploy_workflow

    from ._run import store_for_sdk

    cfg = settings()
    configure_logging(cfg.verbose)
    if (timezone != "UTC" or end is not None) and cron is None:
        raise click.UsageError("--timezone and --end go with --schedule")
    schedule = Schedule(cron, timezone, end.date() if end else None) if cron else None

    store = store_for_sdk(cfg)  # a deploy may be the first thing a store holds

    async def go() -> Deployment:
        async with AsyncRuns(store) as runs:
            return await deploy_workflow(runs, target, schedule=schedule)

    done = run_async(go)
    if as_json or cfg.json:
        print_json(done)
    else:
        out = console()
        what = (
            "build failed:"
            if done.state == "Created"
            else "deployed"
            if done.changed
            else "already deployed"
        )
        line = safe(f"{what} {done.name} ")
        line.append_text(badge(done.state, "failed" if done.state == "Created" else None))
        out.print(line, f"run {done.run_id}", f"version {done.job_version or '-'}")
    if done.state == "Created":
        raise CliError(
            f"the build of {target} failed: `lifecycle log read {done.name} --run {done.run_id}` "
            "shows its log"
        )
