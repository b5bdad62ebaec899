"""``lifecycle scheduler``: fire the deployed jobs of a store at their due times (issue 16).

A long-running process: each tick it arms every scheduled job's next due time, starts the runs
that are due on this machine's engine, and ends jobs past their end date Expired — all as facts,
exactly once per due time however often it is killed and restarted, and however many schedulers
share the store (one fires at a time; the others stand by). See
``lifecycle._workflow._scheduler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

import click

from ._base import configure_logging, run_async, settings
from ._render import console, safe

if TYPE_CHECKING:
    from lifecycle._workflow._scheduler import Firing

__all__ = ["scheduler"]


@click.command(short_help="Fire deployed jobs at their due times (runs until stopped).")
@click.option(
    "--catch-up",
    type=click.Choice(["latest", "all", "none"]),
    default="latest",
    show_default=True,
    help="Due times missed while no scheduler ran: fire the latest once, all, or none.",
)
@click.option(
    "--adapter",
    default="inprocess",
    show_default=True,
    help="Where the fired runs' tasks execute (inprocess, subprocess, ...).",
)
@click.option("--max-parallel", type=int, help="Tasks executing at once (default: the engine's).")
@click.option("--once", is_flag=True, help="One pass (arm, fire what is due), then exit.")
def scheduler(*, catch_up: str, adapter: str, max_parallel: int | None, once: bool) -> None:
    """Run the scheduler on the store until interrupted (Ctrl-C): arm each deployed job's
    next due time (the job goes Scheduled), start its run when it is due, and end a job
    Expired past its end date. Killed and restarted, it neither skips nor repeats a due time;
    missed ones follow --catch-up. Runs it started and still running when it stops end
    `engine_stopped`."""
    from lifecycle._runs import AsyncRuns
    from lifecycle._workflow._scheduler import Scheduler

    from ._run import store_for_sdk

    cfg = settings()
    configure_logging(cfg.verbose)
    out = console()

    def report(firing: Firing) -> None:
        when = firing.due_at.isoformat(timespec="minutes") if firing.due_at else ""
        run = f"run {firing.run_id}" if firing.run_id is not None else ""
        line = f"{firing.what:8} {firing.name} {when} {run} {firing.detail}".rstrip()
        out.print(safe(line, "red" if firing.what == "failed" else ""))

    async def go() -> None:
        async with (
            AsyncRuns(store_for_sdk(cfg)) as runs,
            Scheduler(
                runs,
                catch_up=cast("Literal['latest', 'all', 'none']", catch_up),  # click checked it
                adapter=adapter,
                max_parallel=max_parallel,
            ) as s,
        ):
            if once:
                for firing in await s.tick():
                    report(firing)
                if not s.leader:
                    out.print("another scheduler holds the lease: it fires the jobs")
                return
            out.print(safe(f"scheduler on {runs.store.url}: Ctrl-C stops it"))
            await s.run(report=report)

    run_async(go)
