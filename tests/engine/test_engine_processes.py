"""The engine with real processes: an engine killed with SIGKILL (on SQLite, shared between
processes) — what it ran dies with it, another engine ends its run — and runs of OS processes
that are aborted, killed from outside, or run out of memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import lifecycle
from lifecycle import Container, Engine
from tests.adapters.test_subprocess import alive, session

from .conftest import logs

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WORKER = Path(__file__).with_name("_engine_worker.py")
ROOT = Path(__file__).resolve().parents[2]
WATCHDOG = b"lifecycle-watchdog"


@contextlib.asynccontextmanager
async def engine_process(
    url: str, ttl: float, adapter: str
) -> AsyncIterator[tuple[anyio.abc.Process, dict[str, Any]]]:
    """An engine in a process of its own (``_engine_worker.py``) running one container, and
    what it printed once the container ran: ``run_id``, ``pids``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(WORKER), url, str(ttl), adapter]
    async with await anyio.open_process(command, env=env) as process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(30):
                line = b""
                async for chunk in process.stdout:
                    line += chunk
                    if b"\n" in line:
                        break
            if not line.strip():
                assert process.stderr is not None
                pytest.fail(f"the engine process said nothing: {await process.stderr.receive()!r}")
            yield process, json.loads(line)
        finally:
            if process.returncode is None:
                process.kill()


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite is asyncio-only
async def test_killed_engine_leaves_nothing_running_and_a_running_engine_ends_its_run(
    tmp_path: Path,
) -> None:
    """Issues 12.4 and 12.8: SIGKILL an engine running an OS process that started a child:
    both die with it (the watchdog), and an engine that was already running ends the run
    ``engine_lost`` by itself (every ``ttl / 4``), no ``reconcile()`` called."""
    url, ttl = f"sqlite:///{tmp_path / 'runs.db'}", 1.0
    async with (
        lifecycle.AsyncRuns(url, poll_interval=0.05) as runs,
        Engine(runs, adapter="inprocess", lease_ttl=ttl),
    ):
        async with engine_process(url, ttl, "subprocess") as (process, started):
            run_id, (leader, child) = started["run_id"], started["pids"]
            try:
                assert session(leader) == sorted([leader, child])
                process.send_signal(signal.SIGKILL)
                await process.wait()
                with anyio.fail_after(10):
                    while session(leader):  # noqa: ASYNC110  (polling other processes)
                        await anyio.sleep(0.02)
            finally:
                kill_all(session(leader))
        with anyio.fail_after(30):  # generous: the bound is 1.25 x ttl (LeaseTimes)
            while not (await runs.get(run_id)).terminal:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        view = await runs.get(run_id)
    assert (view.state, view.reason) == ("Error", "engine_lost")
    assert (view.containers["work"].state, view.containers["work"].reason) == (
        "Error",
        "engine_lost",
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite is asyncio-only
async def test_reconcile_kills_what_the_watchdog_could_not(tmp_path: Path) -> None:
    """Issue 12.4: the watchdog was killed too, so the container and its child outlive the
    engine; the engine that reconciles the lost run kills them, by their recorded identity."""
    url, ttl = f"sqlite:///{tmp_path / 'runs.db'}", 1.0
    async with engine_process(url, ttl, "subprocess") as (process, started):
        run_id, (leader, child) = started["run_id"], started["pids"]
        try:
            dog = started["watchdog"]
            assert WATCHDOG in cmdline(dog)
            os.kill(dog, signal.SIGKILL)
            with anyio.fail_after(10):
                while alive(dog):  # noqa: ASYNC110  (polling another process)
                    await anyio.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            assert session(leader) == sorted([leader, child])  # nobody left to kill them
            async with lifecycle.AsyncRuns(url) as runs:
                with anyio.fail_after(30):  # generous: the lease expires within ttl
                    while not (await runs.get(run_id)).terminal:
                        await runs.reconcile()
                        await anyio.sleep(0.05)
                view = await runs.get(run_id)
            with anyio.fail_after(10):
                while session(leader):  # noqa: ASYNC110  (polling other processes)
                    await anyio.sleep(0.02)
        finally:
            kill_all(session(leader))
    assert (view.state, view.reason) == ("Error", "engine_lost")


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_abort_leaves_no_process_behind() -> None:
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(os.getpid(), child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    async with (
        lifecycle.AsyncRuns("memory://") as runs,
        Engine(runs, adapter="subprocess", watch_interval=0.05) as engine,
    ):
        run = await engine.submit(
            "domino", containers=[Container("parent", command=[sys.executable, "-c", code])]
        )
        with anyio.fail_after(20):
            while not (lines := await logs(runs, run.id, "parent")):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        pids = [int(p) for p in lines[0].split()]
        assert all(alive(pid) for pid in pids)
        view = await engine.abort(run.id)
    assert view.state == "Stopped"
    assert view.containers["parent"].state == "Stopped"
    with anyio.fail_after(5):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110  (polling another process / thread)
            await anyio.sleep(0.05)


async def test_task_out_of_memory_ends_datatailr_run_out_of_memory() -> None:
    async with (
        lifecycle.AsyncRuns("memory://") as runs,
        Engine(runs, adapter="subprocess") as engine,
    ):
        run = await engine.submit(
            "datatailr",
            containers=[
                Container(
                    "hungry",
                    command=[sys.executable, "-c", "b = bytearray(1 << 30)"],
                    memory_limit=200 * 2**20,
                ),
                Container("after", command=["true"], depends_on=["hungry"]),
            ],
        )
        view = await engine.wait(run.id)
    assert view.state == "Out of Memory"
    assert view.containers["hungry"].state == "Out of Memory"
    assert (view.containers["after"].state, view.containers["after"].reason) == (
        "Stopped",
        "upstream_failed",
    )


async def test_task_killed_from_outside_fails_the_run_naming_the_signal() -> None:
    """Issue 12.5: a task SIGKILLed by someone else (no memory limit, no OOM kill) is not out of
    memory: the Datatailr run ends Failed, and says which signal."""
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(600)\n"
    async with (
        lifecycle.AsyncRuns("memory://") as runs,
        Engine(runs, adapter="subprocess") as engine,
    ):
        run = await engine.submit(
            "datatailr", containers=[Container("victim", command=[sys.executable, "-c", code])]
        )
        with anyio.fail_after(20):
            while not (lines := await logs(runs, run.id, "victim")):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        os.kill(int(lines[0]), signal.SIGKILL)
        view = await engine.wait(run.id)
    assert view.state == "Failed"
    victim = view.containers["victim"]
    assert (victim.state, victim.reason) == ("Failed", "killed by SIGKILL")
    assert view.reason == "container 'victim' failed: killed by SIGKILL"
