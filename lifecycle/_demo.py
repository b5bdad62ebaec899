"""The demo that ``make demo`` and ``lifecycle demo`` run: the library's main job on its embedded
default — a SQLite file and real OS processes through the ``subprocess`` adapter.

1. A Qualytics profile over three containers, one of which exits non-zero: the run ends Success
   with the Warning indicator (a failed container does not fail a profile).
2. A Domino run, aborted while its process runs: StopRequested → Stopping → Stopped, and the
   process is terminated.
3. A Datatailr run whose process allocates past its memory limit: Out of Memory.

Then it prints each view and one container's log, replays the store's log to show that replay
equals the live views, and draws the Qualytics state machine as Mermaid.

4. A scheduled job: a workflow file deployed with a schedule of every 15 minutes (built in a
   fresh process: Building → Ready), armed by the scheduler (Scheduled), fired at its due time
   and the next one armed — on a demo clock moved by hand, so the demo does not wait 15 minutes.
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


JOB = """\
from lifecycle import task, workflow

@task()
def count_orders() -> int:
    print("counted 1200 orders")
    return 1200

@task()
def report(orders: int) -> str:
    return f"{orders} orders"

@workflow(name="orders-report", schedule="*/15 * * * *")
def orders_report() -> None:
    report(count_orders())
"""


async def record_scheduled_job(runs: lifecycle.AsyncRuns, folder: Path) -> list[str]:
    """Deploy the demo's scheduled job, arm it, fire it once on a demo clock; what happened."""
    import datetime as dt  # noqa: PLC0415

    from lifecycle._workflow._deploy import deploy  # noqa: PLC0415
    from lifecycle._workflow._scheduler import ManualClock, Scheduler  # noqa: PLC0415

    path = folder / "orders_report.py"
    path.write_text(JOB, encoding="utf-8")
    done = await deploy(runs, str(path))
    lines = [f"deployed {done.name}: deploy run {done.run_id} {done.state}, every 15 minutes"]
    clock = ManualClock(dt.datetime.now(dt.UTC))
    async with Scheduler(runs, clock=clock) as scheduler:
        for _ in range(2):
            for firing in await scheduler.tick():
                if firing.what == "fired":
                    view = await scheduler.engine.wait(firing.run_id or 0)
                    lines.append(f"fired run {view.run_id} at {firing.due_at:%H:%M}: {view.state}")
                elif firing.what == "armed" and firing.due_at is not None:
                    state = (await runs.get(done.run_id)).state
                    lines.append(
                        f"armed run {firing.run_id} for {firing.due_at:%H:%M} UTC "
                        f"(the job is {state})"
                    )
                    clock.set(firing.due_at)  # the demo clock jumps to the due time
    return lines


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
        print("\na scheduled job (a demo clock: no waiting 15 minutes):", file=out)
        with tempfile.TemporaryDirectory(prefix="lifecycle-demo-job-") as folder:
            for line in await record_scheduled_job(runs, Path(folder)):
                print(f"    {line}", file=out)
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
    print(f"\nthe dashboard on these runs: lifecycle ui --store {store}  (extra: lifecycle[ui])")
    return 0
