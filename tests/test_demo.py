"""The demo executes real processes and ends each run as it says it does, on SQLite and on
``memory://``."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._demo import amain

from .cli._support import cli


def _check(text: str) -> None:
    assert "nightly-profile: Success (terminal, succeeded)" in text
    assert "run 1 ⚠ Warning" in text
    assert "train-model: Stopped (terminal, cancelled)" in text
    assert "daily-etl: Out of Memory (terminal, failed)" in text
    assert "views equal the live ones: True" in text
    assert "[stderr] relation customers does not exist" in text
    assert "deployed orders-report: deploy run 4 Ready, every 15 minutes" in text
    assert "armed run 5 for" in text and "(the job is Scheduled)" in text
    assert re.search(r"fired run 5 at \d\d:\d\d: Completed", text)
    assert "armed run 6 for" in text


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # SQLite: aiosqlite is asyncio-only
async def test_demo(tmp_path: Path) -> None:
    out = io.StringIO()
    await amain(f"sqlite:///{tmp_path}/runs.db", out)
    _check(out.getvalue())


@pytest.mark.slow
def test_demo_on_memory_finishes() -> None:
    """It used to spin forever (and grow to 14 GB): following the Domino run waited for the
    store's head to pass that run's last record, which another run's append had already done;
    and the replay opened ``memory://`` again, a new, empty store."""
    result = cli("demo", "memory://", timeout=120)
    assert result.returncode == 0, result.stderr
    _check(result.stdout)
    assert "replayed the log of memory://" in result.stdout


class _CountingStore(lifecycle.MemoryStore):
    """A memory store that refuses to be read more than ``limit`` times: a follower that spins
    fails the test instead of hanging it (a spin never yields, so no timeout could fire)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.reads = 0
        self.limit = limit

    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        self.reads += 1
        if self.reads > self.limit:
            raise AssertionError(f"read {self.reads} times: the follower spins")
        return await super().read(streams, after=after)


@pytest.mark.anyio
async def test_follow_waits_when_another_run_appends_later() -> None:
    store = _CountingStore(limit=100)
    async with lifecycle.AsyncRuns(store, poll_interval=60) as runs:
        followed = await runs.create("domino", containers=["train"])
        other = await runs.create("domino", containers=["train"])
        got: list[ev.Recorded] = []

        async def follow() -> None:
            async for record in runs.follow(followed.id):
                got.append(record)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                await anyio.wait_all_tasks_blocked()
                for _ in range(5):  # the head moves past the followed run's last record
                    await runs.record(other.id, ev.LogRecorded(text="elsewhere"))
                    await anyio.wait_all_tasks_blocked()
                done = [*START_SEQUENCE, ev.ExecutionSucceeded()]
                await runs.record(followed.id, done, container="train")
                await runs.record(followed.id, done)
    assert isinstance(got[-1].event, ev.ExecutionSucceeded)
    assert store.reads < 20
