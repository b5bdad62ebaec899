"""The ``subprocess`` adapter: output, exit codes, memory limits, stopping, no orphans."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
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


GRANDPARENT = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print('pids', os.getpid(), child.pid, flush=True)\n"
    "time.sleep(600)\n"
)
"""A container that starts a child of its own and prints ``pids PID CHILD``."""


BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def session(sid: int) -> list[int]:
    """The live processes of session ``sid`` (read from /proc, zombies left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return sorted(found)


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


async def test_sigkill_from_outside_is_a_failure_naming_the_signal() -> None:
    """Issue 12.5: a kill from outside, no memory limit, no OOM kill: not out of memory."""
    code = "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(600)\n"
    report = Recorder()
    report.wanted = "pid"
    finished: list[Finished] = []
    async with anyio.create_task_group() as tg:

        async def execute() -> None:
            finished.append(await SubprocessAdapter().execute(py(code), report))

        tg.start_soon(execute)
        with anyio.fail_after(10):
            await report.seen.wait()
        os.kill(int(report.lines("stdout")[0].split()[1]), signal.SIGKILL)
    assert finished[0].fact == ev.ExecutionFailed(error="killed by SIGKILL", exit_code=-9)


async def test_sigkill_it_sends_itself_is_not_out_of_memory() -> None:
    finished, _ = await run(py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert finished.fact == ev.ExecutionFailed(error="killed by SIGKILL", exit_code=-9)


def _memory_cgroup(tmp: str) -> Path | None:
    """A cgroup v1 memory group of our own (root only), or ``None``."""
    base = Path("/sys/fs/cgroup/memory")
    group = base / f"lifecycle-test-{os.getpid()}-{tmp}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(64 * 2**20))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return None
    return group


async def test_the_kernels_oom_kill_is_out_of_memory() -> None:
    """A real OOM kill: the container moves itself into a 64 MiB memory cgroup and touches
    500 MiB; the kernel's OOM killer sends SIGKILL, and the count of OOM kills goes up."""
    group = _memory_cgroup(secrets.token_hex(4))
    if group is None:
        pytest.skip("needs a writable cgroup v1 memory controller (root) to OOM-kill for real")
    try:
        code = "b = bytearray(500 << 20)"
        command = f"echo $$ > {group}/cgroup.procs && exec {sys.executable} -c '{code}'"
        spec = ContainerSpec(run_id=1, name="c", command=("/bin/sh", "-c", command))
        finished, _ = await run(spec)
    finally:
        with anyio.fail_after(10):
            while True:
                try:
                    group.rmdir()
                    break
                except OSError:  # its last process is still being torn down
                    await anyio.sleep(0.05)
    assert finished.fact == ev.OutOfMemory(limit_bytes=None)


async def test_execution_started_records_the_process_identity() -> None:
    code = "import os; print(os.getpid())"
    _, report = await run(py(code))
    (started,) = [f for f in report.facts if isinstance(f, ev.ExecutionStarted)]
    assert started.process is not None
    boot, _ns, pid, start = started.process.split(":")[1:]
    assert int(pid) == int(report.lines("stdout")[0])
    assert boot == BOOT_ID
    assert int(start) > 0


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


async def test_container_dies_with_an_engine_killed_by_sigkill() -> None:
    """Issue 12.4: SIGKILL the process running the adapter: its watchdog kills the container's
    whole group (the container and the child it started) — none is left re-parented to PID 1."""
    worker = Path(__file__).with_name("_adapter_worker.py")
    async with await anyio.open_process([sys.executable, str(worker), GRANDPARENT]) as engine:
        assert engine.stdout is not None
        line = b""
        with anyio.fail_after(20):
            async for chunk in engine.stdout:
                line += chunk
                if b"\n" in line:
                    break
        leader, child = (int(p) for p in line.split()[1:3])
        assert session(leader) == sorted([leader, child])
        engine.send_signal(signal.SIGKILL)
        await engine.wait()
    try:
        with anyio.fail_after(10):
            while session(leader):  # noqa: ASYNC110  (polling other processes)
                await anyio.sleep(0.02)
    finally:  # a failing test leaves nothing behind either
        for pid in session(leader):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
