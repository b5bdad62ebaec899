"""The engine with real processes: an engine killed with SIGKILL (on SQLite, shared between
processes), and runs of OS processes that are aborted or run out of memory."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import Container, Engine
from tests.adapters.test_subprocess import alive

from .conftest import logs

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WORKER = Path(__file__).with_name("_engine_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite is asyncio-only
async def test_engine_killed_with_sigkill_is_reconciled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ttl = 1.0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    async with await anyio.open_process(
        [sys.executable, str(WORKER), url, str(ttl)], env=env
    ) as engine_process:
        assert engine_process.stdout is not None
        with anyio.fail_after(30):
            line = b""
            async for chunk in engine_process.stdout:
                line += chunk
                if b"\n" in line:
                    break
        if not line.strip():
            assert engine_process.stderr is not None
            pytest.fail(
                f"the engine process said nothing: {await engine_process.stderr.receive()!r}"
            )
        run_id = json.loads(line)["run_id"]
        engine_process.send_signal(signal.SIGKILL)
        killed_at = anyio.current_time()
        await engine_process.wait()

    async with lifecycle.AsyncRuns(url) as runs:
        view = await runs.get(run_id)
        assert view.state == "Running"
        assert view.containers["work"].state == "Running"
        assert await runs.reconcile() == [] or anyio.current_time() - killed_at >= 0
        with anyio.fail_after(ttl + 5):
            while not (await runs.get(run_id)).terminal:
                await runs.reconcile()
                await anyio.sleep(0.05)
        took = anyio.current_time() - killed_at
        view = await runs.get(run_id)
    assert took <= ttl + 1.0, f"reconciled {took:.2f} s after the kill (lease ttl {ttl} s)"
    assert (view.state, view.reason) == ("Error", "engine_lost")
    assert view.containers["work"].state == "Error"
    assert view.containers["work"].reason == "engine_lost"


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
