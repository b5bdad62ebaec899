"""The demo that ``make demo`` and ``lifecycle demo`` run: three runs, one per dialect.

1. A Qualytics profile over three containers, one of which fails: the run ends Success with the
   Warning indicator.
2. A Domino run, stopped while it runs: StopRequested → Stopping → Stopped.
3. A Datatailr run whose code runs out of memory: Out of Memory.

Then it prints each view, replays the log to show that replay equals the live views, and draws
the Qualytics state machine as Mermaid.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio

import lifecycle
from lifecycle import events as ev

from ._canonical import START_SEQUENCE

__all__ = ["main", "record_demo_runs", "render_view"]


def render_view(view: lifecycle.RunView) -> str:
    """A few lines that say what a run looks like now."""
    badge = " ⚠ Warning" if view.warning else ""
    head = (
        f"run {view.run_id}{badge}  [{view.dialect} {view.operation}] {view.name or '-'}: "
        f"{view.state} ({view.phase}" + (f", {view.outcome}" if view.outcome else "") + ")"
    )
    lines = [head]
    if view.reason:
        lines.append(f"    reason: {view.reason}")
    for name, c in view.containers.items():
        extra = f" — {c.reason}" if c.reason else ""
        lines.append(f"    {name:<12} {c.state}{extra}")
    return "\n".join(lines)


async def record_demo_runs(runs: lifecycle.AsyncRuns) -> list[int]:
    """Record the three demo runs through the run service; return their ids."""
    # 1. Qualytics profile: three containers, one fails -> Success + Warning.
    profile = await runs.create(
        "qualytics",
        operation="profile",
        name="nightly-profile",
        containers=["orders", "customers", "payments"],
    )
    await runs.record(profile.id, START_SEQUENCE)
    for table in ("orders", "customers", "payments"):
        await runs.record(
            profile.id,
            [*START_SEQUENCE, ev.LogRecorded(text=f"profiling {table}")],
            container=table,
        )
    await runs.record(profile.id, ev.ExecutionSucceeded(), container="orders")
    await runs.record(profile.id, ev.ExecutionSucceeded(), container="payments")
    await runs.record(
        profile.id,
        [
            ev.LogRecorded(
                level="error", stream="stderr", text="relation customers does not exist"
            ),
            ev.ExecutionFailed(error="relation customers does not exist", exit_code=1),
        ],
        container="customers",
    )
    await runs.record(profile.id, ev.ExecutionSucceeded())

    # 2. Domino: stopped while running.
    job = await runs.create("domino", name="train-model")
    await runs.record(job.id, [*START_SEQUENCE, ev.LogRecorded(text="epoch 1/10")])
    await runs.abort(job.id, by="ann")

    # 3. Datatailr: built, then out of memory.
    etl = await runs.create("datatailr", name="daily-etl", build=True)
    await runs.record(etl.id, [ev.BuildStarted(image="daily-etl"), ev.BuildSucceeded(version=1)])
    await runs.record(etl.id, [*START_SEQUENCE, ev.LogRecorded(text="loading 40 GB")])
    await runs.record(etl.id, ev.OutOfMemory(limit_bytes=512 * 2**20))
    return [profile.id, job.id, etl.id]


async def amain(store: str = "memory://", out: TextIO = sys.stdout) -> None:
    async with lifecycle.AsyncRuns(store) as runs:
        ids = await record_demo_runs(runs)
        for run_id in ids:
            print(render_view(await runs.get(run_id)), file=out)
        records = [r for run_id in ids for r in await runs.history(run_id)]
        replayed = lifecycle.Projector()
        replayed.feed(sorted(records, key=lambda r: r.position))
        same = all([replayed.view(i) == await runs.get(i) for i in ids])
        print(f"\nreplayed {len(records)} facts: views equal the live ones: {same}", file=out)
    print("\nThe qualytics state machine (Mermaid):\n", file=out)
    print(lifecycle.dialect("qualytics").to_mermaid(), file=out)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; ``argv[0]``, if given, is the store URL."""
    args = sys.argv[1:] if argv is None else argv
    anyio.run(amain, args[0] if args else "memory://")
    return 0
