"""The demo that ``make demo`` and ``lifecycle demo`` run: the library's main job on its embedded
default — a SQLite file and real OS processes through the ``subprocess`` adapter.

1. A Qualytics profile over three containers, one of which exits non-zero: the run ends Success
   with the Warning indicator (a failed container does not fail a profile).
2. A Domino run, aborted while its process runs: StopRequested → Stopping → Stopped, and the
   process is terminated.
3. A Datatailr run whose process allocates past its memory limit: Out of Memory.

Then it prints each view and one container's log, replays the store's log to show that replay
equals the live views, and draws the Qualytics state machine as Mermaid.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

import anyio
import structlog

import lifecycle

__all__ = ["main", "record_demo_runs", "render_view"]

PY = sys.executable


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
    """Execute the three demo runs through the engine; return their ids."""
    async with lifecycle.Engine(runs, adapter="subprocess", max_parallel=3) as engine:
        profile = await engine.submit(
            "qualytics", operation="profile", name="nightly-profile", containers=[
                lifecycle.Container("orders", command=[PY, "-c", "print('profiled 1200 rows')"]),
                lifecycle.Container("customers", command=[PY, "-c", (
                    "import sys; print('relation customers does not exist', file=sys.stderr);"
                    " sys.exit(3)")]),
                lifecycle.Container("payments", command=[PY, "-c", "print('profiled 87 rows')"]),
            ],
        )  # fmt: skip
        job = await engine.submit("domino", name="train-model", containers=[
            lifecycle.Container("train", command=[PY, "-u", "-c", (
                "import time\nfor epoch in range(1, 100):\n"
                "    print(f'epoch {epoch}/99'); time.sleep(0.2)")]),
        ])  # fmt: skip
        etl = await engine.submit("datatailr", name="daily-etl", containers=[
            lifecycle.Container("load", memory_limit=256 * 2**20, command=[PY, "-c", (
                "print('loading 2 GiB'); data = bytearray(2 * 1024**3)")]),
        ])  # fmt: skip
        with anyio.fail_after(30):  # abort the Domino run once it has printed two epochs
            epochs = 0
            async for record in runs.follow(job.id):
                if isinstance(record.event, lifecycle.events.LogRecorded):
                    epochs += 1
                if epochs == 2:
                    break
        await engine.abort(job.id, by="demo")
        for run in (profile, job, etl):
            await engine.wait(run.id)
    return [profile.id, job.id, etl.id]


async def amain(store: str, out: TextIO = sys.stdout) -> None:
    """The demo on ``store``, opened once: a ``memory://`` URL names a new, empty store each
    time it is opened, so the replay must read the very store the runs went to."""
    async with lifecycle.AsyncRuns(store) as runs:
        ids = await record_demo_runs(runs)
        for run_id in ids:
            print(render_view(await runs.get(run_id)), file=out)
        print("\nlogs:", file=out)
        for run_id in ids:
            for r in await runs.history(run_id):
                if isinstance(r.event, lifecycle.events.LogRecorded):
                    print(f"    {r.stream:<20} [{r.event.stream}] {r.event.text}", file=out)
        report = await lifecycle.areplay(runs.store)
        same = all([report.views[run_id] == await runs.get(run_id) for run_id in ids])
    print(f"\nreplayed the log of {store}: views equal the live ones: {same}", file=out)
    print("\nThe qualytics state machine (Mermaid):\n", file=out)
    print(lifecycle.dialect("qualytics").to_mermaid(), file=out)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; ``argv[0]``, if given, is the store URL (default: a new SQLite file)."""
    args = sys.argv[1:] if argv is None else argv
    # the library never configures logging; the demo, an application, does: warnings on stderr
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(30),
    )
    if args:
        store = args[0]
    else:
        store = f"sqlite:///{Path(tempfile.mkdtemp(prefix='lifecycle-demo-')) / 'runs.db'}"
        print(f"store: {store}\n")
    anyio.run(amain, store)
    return 0
