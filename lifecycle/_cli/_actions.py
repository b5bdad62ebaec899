"""``lifecycle abort | rerun | run | demo``: acting on runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._base import (
    CliError,
    configure_logging,
    normalise_store_url,
    open_runs,
    run_async,
    settings,
)
from ._render import badge, console, print_json, safe
from ._run import load_recorded, store_for_sdk, summarise

if TYPE_CHECKING:
    from lifecycle._views import RunView

__all__ = ["abort", "demo", "rerun"]


@click.command(short_help="Stop a run and its active tasks.")
@click.argument("run_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the run's view as JSON.")
def abort(run_id: int, as_json: bool) -> None:
    """Stop run RUN_ID and every task of it that is still active.

    The run ends Stopped (Datatailr, Domino) or Aborted (Qualytics); an engine driving it stops
    the work. A run that has already ended cannot be aborted (exit 1).
    """
    cfg = settings()

    async def go() -> tuple[RunView, RunView]:
        async with open_runs(cfg, write=True) as runs:
            before = await runs.get(run_id)
            if before.terminal:
                raise CliError(
                    f"run {run_id} has already ended ({before.state}); there is nothing to abort"
                )
            return before, await runs.abort(run_id)

    before, after = run_async(go)
    if as_json or cfg.json:
        print_json(after)
        return
    from rich.text import Text

    line = Text.assemble("run ", str(run_id), " of ", safe(after.name or after.dialect, "bold"))
    line.append(": ")
    line.append_text(badge(before.state, before.outcome))
    line.append(" → ")
    line.append_text(badge(after.state, after.outcome))
    console().print(line)


@click.command(short_help="Start a new run from an ended one.")
@click.argument("run_id", type=click.IntRange(min=1))
@click.option(
    "--from-task",
    metavar="TASK",
    help="Workflows: execute TASK and what depends on it; reuse the cached results upstream.",
)
@click.option(
    "--full", is_flag=True, help="Workflows: execute every task again, reusing no result."
)
@click.option(
    "--job-version",
    type=int,
    help="Workflows: insist that the code loaded is this job version. Other runs: record the "
    "new run under this version.",
)
@click.option("--no-progress", is_flag=True, help="Do not show progress while it runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the new run's view as JSON.")
def rerun(
    *,
    run_id: int,
    from_task: str | None,
    full: bool,
    job_version: int | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Start a new run from run RUN_ID, which has ended (it is never reopened; the new run
    records it as its original).

    A workflow run is executed again on this machine, by default only what failed or did not
    run and everything downstream of it (the other tasks reuse their cached results); exit 0 if
    the new run completed, 1 if not. For any other run, the new run is recorded (Requested) for
    the orchestrator that executes it, and its id is printed.
    """
    cfg = settings()
    as_json = as_json or cfg.json
    if from_task is not None and full:
        raise click.UsageError("--from-task and --full cannot be combined")

    async def original_of() -> RunView:
        async with open_runs(cfg) as runs:
            return await runs.get(run_id)

    original = run_async(original_of)
    recorded = original.params.get("workflow")
    if isinstance(recorded, dict):
        view = _rerun_workflow(
            original=original,
            recorded=recorded,
            from_task=from_task,
            full=full,
            job_version=job_version,
            quiet=no_progress or as_json,
        )
    else:
        if from_task is not None or full:
            raise click.UsageError(
                f"--from-task and --full apply to workflow runs; run {run_id} is a "
                f"{original.dialect} {original.operation} run"
            )
        changes = {} if job_version is None else {"job_version": job_version}

        async def again() -> RunView:
            async with open_runs(cfg, write=True) as runs:
                return await runs.rerun(run_id, **changes)

        view = run_async(again)
    if as_json:
        print_json(view)
    else:
        summarise(view)
    if isinstance(recorded, dict) and view.outcome != "succeeded":
        raise click.exceptions.Exit(1)


def _rerun_workflow(
    *,
    original: RunView,
    recorded: dict[str, Any],
    from_task: str | None,
    full: bool,
    job_version: int | None,
    quiet: bool,
) -> RunView:
    from lifecycle._workflow import Workflow

    configure_logging(settings().verbose)
    store = store_for_sdk(settings())
    load_recorded(recorded)
    wf = Workflow(original.name, store=store)
    entry = wf.rerun(
        original.run_id,
        from_task=from_task,
        full=full,
        version=job_version,
        progress=not quiet,
    )

    async def fetch() -> RunView:
        async with open_runs(settings()) as runs:
            return await runs.get(int(entry["run_id"]))

    return run_async(fetch)


@click.command(short_help="Run the demo that `make demo` runs.")
@click.argument("store", metavar="[STORE_URL]", required=False)
def demo(store: str | None) -> None:
    """Run the demo that `make demo` runs: one run in each dialect (a Qualytics profile that
    ends Success with the Warning indicator, a Domino run stopped while it runs, a Datatailr run
    out of memory), their views, a replay, and a state machine.

    The runs go to STORE_URL; without it, to the store of `lifecycle --store URL` or
    $LIFECYCLE_STORE; without those, to a new SQLite file in a temporary folder (its URL is
    printed). Then `lifecycle --store URL job ls` shows them (not for memory://, which is
    gone when the demo ends).
    """
    from lifecycle._demo import main as demo_main

    cfg = settings()
    configure_logging(cfg.verbose)
    if store is not None and store.strip():
        chosen: str | None = normalise_store_url(store.strip())
    elif isinstance(cfg.store, str):
        chosen = cfg.store
    else:
        chosen = None  # a new SQLite file (a store object is for in-process tests only)
    code = demo_main([chosen] if chosen else [])
    if code:
        raise click.exceptions.Exit(code)
