"""A job that runs every minute: deploy it, run the scheduler, watch it with `lifecycle job ls`.

    python examples/every_minute.py                # deploy this file, schedule it for 3 minutes
    lifecycle job ls                               # in another shell, while it runs

It deploys itself (a real build in a fresh process: Building → Ready), then runs the scheduler
in this process: the job goes Scheduled, a run starts at each minute and the next is armed.
``--minutes N`` says how long; ``--speed X`` runs the clock X times faster (``--speed 60``: a
minute a second) to see several firings at once. The store is ``LIFECYCLE_STORE`` or the
default; ``--undeploy`` ends the job when it is done.
"""

from __future__ import annotations

import argparse
import datetime as dt

import anyio

import lifecycle
from lifecycle import task, workflow


@task()
def heartbeat() -> str:
    now = dt.datetime.now(dt.UTC)
    print(f"alive at {now:%H:%M:%S} UTC")
    return now.isoformat()


@workflow(name="every-minute", schedule="* * * * *")
def every_minute() -> None:
    heartbeat()


async def main(minutes: float, speed: float, undeploy: bool) -> None:
    async with lifecycle.AsyncRuns(lifecycle.default_store_url()) as runs:
        done = await lifecycle.deploy(runs, __file__)
        print(f"deployed {done.name}: {done.state} (deploy run {done.run_id})")
        clock = lifecycle.SystemClock() if speed == 1 else lifecycle.FastClock(speed)

        def report(firing: lifecycle.Firing) -> None:
            when = f"{firing.due_at:%H:%M}" if firing.due_at else ""
            print(f"{firing.what:8} {firing.name} {when} run {firing.run_id}", flush=True)

        async with lifecycle.Scheduler(runs, clock=clock, interval=1.0 * speed) as scheduler:
            with anyio.move_on_after(minutes * 60 / speed):
                await scheduler.run(report=report)
        if undeploy:
            await lifecycle.undeploy_job(runs, done.name)
            print(f"undeployed {done.name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--undeploy", action="store_true")
    args = parser.parse_args()
    anyio.run(main, args.minutes, args.speed, args.undeploy, backend="asyncio")
