"""The ``subprocess`` adapter: output, exit codes, memory limits, stopping, no orphans."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from lifecycle_adapters.local_process import SubprocessAdapter

from lifecycle import events as ev
from lifecycle._engine import ContainerSpec, Finished

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class Recorder:
    def __init__(self) -> None:
        self.facts: list[ev.Fact] = []
        self.seen = anyio.Event()
        self.wanted = ""

    async def __call__(self, fact: ev.Fact) -> None:
        self.facts.append(fact)
        if isinstance(fact, ev.LogRecorded) and self.wanted and self.wanted in fact.text:
            self.seen.set()

    def lines(self, stream: str) -> list[str]:
        return [f.text for f in self.facts if isinstance(f, ev.LogRecorded) and f.stream == stream]


def py(code: str, **fields: object) -> ContainerSpec:
    return ContainerSpec(run_id=1, name="c", command=(sys.executable, "-c", code), **fields)  # type: ignore[arg-type]


async def run(
    spec: ContainerSpec, adapter: SubprocessAdapter | None = None
) -> tuple[Finished, Recorder]:
    report = Recorder()
    finished = await (adapter or SubprocessAdapter()).execute(spec, report)
    return finished, report


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_every_line_kept_long_ones_split_invalid_utf8_replaced() -> None:
    code = (
        "import sys\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'\\xff bad\\n' + b'x' * 2500 + b'\\n')\n"
        "for i in range(3000): out.write(b'line %d\\n' % i)\n"
        "out.write(b'no newline at the end')\n"
    )
    finished, report = await run(py(code), SubprocessAdapter(max_line=1000))
    assert isinstance(finished.fact, ev.ExecutionSucceeded)
    out = report.lines("stdout")
    assert out[0] == "\ufffd bad"
    assert out[1:4] == ["x" * 1000, "x" * 1000, "x" * 500]
    assert out[4:-1] == [f"line {i}" for i in range(3000)]
    assert out[-1] == "no newline at the end"


async def test_exit_codes_and_signals() -> None:
    finished, _ = await run(py("raise SystemExit(4)"))
    assert finished.fact == ev.ExecutionFailed(error="exited with code 4", exit_code=4)
    finished, _ = await run(py("import os, signal; os.kill(os.getpid(), signal.SIGTERM)"))
    assert finished.fact == ev.ExecutionFailed(error="killed by SIGTERM", exit_code=-15)


async def test_missing_command_reports_the_os_error() -> None:
    spec = ContainerSpec(run_id=1, name="c", command=("lifecycle-no-such-command", "--x"))
    finished, report = await run(spec)
    assert isinstance(finished.fact, ev.ExecutionFailed)
    assert finished.fact.exit_code == 127
    assert "No such file or directory: 'lifecycle-no-such-command'" in finished.fact.error
    assert any("No such file" in f.text for f in report.facts if isinstance(f, ev.LogRecorded))
    assert not any(isinstance(f, ev.ExecutionStarted) for f in report.facts)


async def test_memory_limit_becomes_out_of_memory() -> None:
    limit = 200 * 2**20
    finished, report = await run(py("b = bytearray(1 << 30)", memory_limit=limit))
    assert finished.fact == ev.OutOfMemory(limit_bytes=limit)
    assert any("MemoryError" in line for line in report.lines("stderr"))
    finished, _ = await run(py("b = bytearray(1 << 20); print(len(b))", memory_limit=limit))
    assert isinstance(finished.fact, ev.ExecutionSucceeded)


async def test_sigkill_it_did_not_send_is_out_of_memory() -> None:
    """What the kernel's OOM killer does: SIGKILL, out of the blue."""
    finished, _ = await run(py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert finished.fact == ev.OutOfMemory(limit_bytes=None)


async def test_env_is_added() -> None:
    code = (
        "import os; "
        "print(os.environ['EXTRA'], os.environ['LIFECYCLE_CONTAINER'], 'PATH' in os.environ)"
    )
    _, report = await run(py(code, env={"EXTRA": "yes"}))
    assert report.lines("stdout") == ["yes c True"]


async def test_stop_terminates_then_kills_and_leaves_no_orphans() -> None:
    code = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"  # only SIGKILL will do
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print('pids', os.getpid(), child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    report = Recorder()
    report.wanted = "pids"
    adapter = SubprocessAdapter(grace=0.5)
    async with anyio.create_task_group() as tg:

        async def execute() -> None:
            await adapter.execute(py(code), report)

        tg.start_soon(execute)
        with anyio.fail_after(10):
            await report.seen.wait()
        pids = [int(p) for p in report.lines("stdout")[0].split()[1:]]
        assert all(alive(pid) for pid in pids)
        began = anyio.current_time()
        tg.cancel_scope.cancel()
    took = anyio.current_time() - began
    assert 0.4 < took < 5, f"stopped after {took:.2f} s (grace 0.5 s, SIGTERM ignored)"
    with anyio.fail_after(5):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110  (polling another process / thread)
            await anyio.sleep(0.05)


async def test_output_written_while_stopping_is_kept() -> None:
    code = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('cleaning up', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    report = Recorder()
    report.wanted = "ready"
    async with anyio.create_task_group() as tg:

        async def execute() -> None:
            await SubprocessAdapter(grace=5).execute(py(code), report)

        tg.start_soon(execute)
        with anyio.fail_after(10):
            await report.seen.wait()
        tg.cancel_scope.cancel()
    assert report.lines("stdout") == ["ready", "cleaning up"]


async def test_background_children_are_killed_when_the_main_process_exits() -> None:
    spec = ContainerSpec(run_id=1, name="c", command=("/bin/sh", "-c", "sleep 600 & echo $!"))
    finished, report = await run(spec)
    assert isinstance(finished.fact, ev.ExecutionSucceeded)
    pid = int(report.lines("stdout")[0])
    with anyio.fail_after(5):
        while alive(pid):  # noqa: ASYNC110  (polling another process / thread)
            await anyio.sleep(0.05)
