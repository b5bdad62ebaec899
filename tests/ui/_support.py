"""A store for the dashboard's tests: workflows that completed and failed, a Qualytics run with
the Warning indicator and hostile log text, and a run still active (names prefixed ``ui-``: the
workflow SDK keeps workflows by name in each process)."""

from __future__ import annotations

from typing import Final

import anyio

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._workflow import task, workflow

__all__ = ["FLAKY", "HOSTILE", "Made", "populate", "populate_url"]

HOSTILE: Final = (
    "<script>document.title='pwned'</script> <b>bold</b> "
    "\x1b[31mred\x1b[0m [bold red]rich[/bold red]"
)
"""A log line that must show as these characters, never run, style or colour anything."""

FLAKY: Final = {"fail": True}
"""``ui-flaky`` fails while this says so: a rerun after flipping it completes."""


@task()
def get_number() -> int:
    return 42


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def flaky(x: int) -> int:
    print(f"flaky got {x}", flush=True)
    if FLAKY["fail"]:
        raise RuntimeError("flaky is failing on purpose")
    return x + 1


@workflow(name="ui-numbers", schedule="0 9 * * *")
def numbers() -> None:
    total = add(get_number().alias("left"), get_number().alias("right")).alias("total")
    add(total, 1).alias("plus_one")


@workflow(name="ui-flaky")
def flaky_flow() -> None:
    flaky(get_number())


class Made:
    """What ``populate`` recorded: the ids to look at."""

    def __init__(self, *, numbers: int, flaky: int, warned: int, active: int) -> None:
        self.numbers = numbers
        self.flaky = flaky
        self.warned = warned
        self.active = active


async def populate(runs: AsyncRuns) -> Made:
    """Record the histories on ``runs`` (any store)."""
    FLAKY["fail"] = True
    done = await numbers.run_async(runs)
    failed = await flaky_flow.run_async(runs)
    warned = await runs.create(
        "qualytics", operation="profile", containers=["orders", "customers"], name="ui-nightly"
    )
    await runs.record(warned.id, ev.ExecutionStarted())
    await runs.record(warned.id, ev.LogRecorded(level="info", stream="system", text=HOSTILE))
    for name, outcome in (("orders", ev.ExecutionSucceeded()), ("customers", None)):
        await runs.record(warned.id, ev.ExecutionStarted(), container=name)
        await runs.record(
            warned.id,
            ev.LogRecorded(level="info", stream="stdout", text=f"{name} rows: 12"),
            container=name,
        )
        await runs.record(
            warned.id,
            outcome or ev.ExecutionFailed(error="bad column <td>", exit_code=1),
            container=name,
        )
    await runs.record(warned.id, ev.ExecutionSucceeded())
    active = await runs.create("domino", operation="job", containers=[], name="ui-live")
    for fact in (ev.ResourcesAssigned(), ev.PreparationStarted(), ev.ExecutionStarted()):
        await runs.record(active.id, fact)
    await runs.record(active.id, ev.LogRecorded(level="info", stream="stdout", text="started"))
    return Made(numbers=done.run_id, flaky=failed.run_id, warned=warned.id, active=active.id)


def populate_url(url: str) -> Made:
    """``populate`` on the store at ``url``."""

    async def main() -> Made:
        async with AsyncRuns(url) as runs:
            return await populate(runs)

    return anyio.run(main, backend="asyncio")
