"""The scheduler killed and restarted 30 times (issue 16): every due time fires exactly once.

A real ``lifecycle deploy`` of a file with a schedule of every minute, on a SQLite file; then
scheduler processes (``_scheduler_proc``, on a clock 60 times faster than the machine's: a due
time every second) are SIGKILLed at random moments — while arming, firing, running a task,
starting up — and restarted, 30 times, then one runs to the end. The log must show one run per
due time, none missing (``catch_up="all"``), none twice, each of them started.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._workflow._deploy import deploy

pytestmark = pytest.mark.anyio

KILLS = 30
SPEED = 60.0  # a clock minute per second

JOB = """
from lifecycle import task, workflow

@task()
def beat() -> str:
    print("beat")
    return "ok"

@workflow(name="heartbeat", schedule="* * * * *")
def heartbeat() -> None:
    beat()
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # SQLite (aiosqlite): asyncio only


def _start(url: str, real0: float, fake0: dt.datetime, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workflow._scheduler_proc",
                url,
                str(real0),
                fake0.isoformat(),
                str(SPEED),
            ],
            cwd=Path(__file__).parents[2],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "LIFECYCLE_LOG_LEVEL": "WARNING"},
        )


async def test_killed_and_restarted_30_times_every_due_time_fires_once(tmp_path: Path) -> None:
    (tmp_path / "heartbeat.py").write_text(JOB, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with lifecycle.AsyncRuns(url) as runs:
        done = await deploy(runs, str(tmp_path / "heartbeat.py"))
        assert done.state == "Ready"
    log = tmp_path / "schedulers.log"
    real0 = time.time()
    fake0 = dt.datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=dt.UTC)
    rnd = random.Random(16)
    for _ in range(KILLS):
        proc = _start(url, real0, fake0, log)
        await anyio.sleep(rnd.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    campaign_end = fake0 + dt.timedelta(seconds=(time.time() - real0) * SPEED)
    # one more scheduler, left alone until it has caught up with every due time of the
    # campaign (catch_up="all"): however slow the machine, it must get there
    last = _start(url, real0, fake0, log)
    try:
        with anyio.move_on_after(120):  # the assertions below say what it did not reach
            while True:
                due, waiting = await _runs_by_due_time(url)
                expected = _minutes(min(due), campaign_end) if due else []
                if expected and all(t in due and t not in waiting for t in expected):
                    break
                await anyio.sleep(0.5)
    finally:
        last.send_signal(signal.SIGKILL)
        last.wait()
    due, waiting = await _runs_by_due_time(url)
    err = log.read_text(encoding="utf-8", errors="replace")
    twice = {t: n for t, n in due.items() if n > 1}
    assert not twice, f"due times with more than one run: {twice}; stderr: {err[-2000:]}"
    # the schedule starts at the first minute after the first scheduler started; from there
    # every due time of the campaign has its one run, started
    first = min(due)
    assert first <= fake0 + dt.timedelta(minutes=20), first  # a scheduler started at all
    expected = _minutes(first, campaign_end)
    assert len(expected) >= KILLS // 2  # the campaign spanned many due times
    missing = [t for t in expected if t not in due]
    assert not missing, f"due times never armed: {missing}; stderr: {err[-2000:]}"
    not_started = [t for t in waiting if t in expected]
    assert not not_started, f"armed, never started: {not_started}"


def _minutes(first: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Every minute from ``first`` up to ``until``."""
    out = []
    while first <= until:
        out.append(first)
        first += dt.timedelta(minutes=1)
    return out


async def _runs_by_due_time(url: str) -> tuple[Counter[dt.datetime], set[dt.datetime]]:
    """How many runs were armed for each due time, and the due times whose run has not
    started."""
    due: Counter[dt.datetime] = Counter()
    waiting: set[dt.datetime] = set()
    async with lifecycle.AsyncRuns(url) as runs:
        for row in await runs.list(name="heartbeat"):
            if row.operation != "workflow":
                continue
            head = [r.event for r in await runs.store.read([f"run-{row.run_id}"])]
            arms = [f for f in head if isinstance(f, ev.ScheduleArmed)]
            assert arms and arms[-1].due_at is not None, head
            due[arms[-1].due_at] += 1
            if all(isinstance(f, (ev.Requested, ev.ScheduleArmed)) for f in head):
                waiting.add(arms[-1].due_at)
    return due, waiting
