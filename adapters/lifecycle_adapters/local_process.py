"""The ``subprocess`` adapter: containers are real OS processes on this machine.

Each container's ``command`` runs through anyio's ``open_process`` in a new session (so it leads
its own process group), with stdin closed and the container's ``env`` added to the inherited
environment (plus ``LIFECYCLE_RUN_ID`` and ``LIFECYCLE_CONTAINER``). Both pipes are drained in a
task group; every line becomes a ``LogRecorded`` on stream ``stdout`` / ``stderr`` (level
``info``: a stream has no levels; invalid UTF-8 is replaced, long lines are split, nothing is
dropped). ``ExecutionStarted(process=...)`` records the process's identity (pid and start time,
``lifecycle.process_identity``).

Endings: exit code 0 → ``ExecutionSucceeded``; non-zero → ``ExecutionFailed(exit_code)``; a
death by signal → ``ExecutionFailed("killed by SIGTERM", exit_code=-15)``. ``OutOfMemory`` only
on evidence (``_oom``): ``MemoryError`` / ``std::bad_alloc`` / "Cannot allocate memory" / "out
of memory" among the last lines of stderr, or a ``SIGKILL`` while the kernel's count of OOM kills
went up (the OOM killer). A ``SIGKILL`` from anyone else is ``killed by SIGKILL``. A command that
cannot be found or started ends ``ExecutionFailed`` with the OS error in the log.

``memory_limit`` becomes ``RLIMIT_AS`` (address space; ``ulimit -v`` in a ``/bin/sh`` that then
``exec``\\ s the command, so the limit holds for the command and its children): allocations past
it fail, which Python reports as ``MemoryError``. It is a Linux mechanism; other systems may
ignore it.

Stopping (abort, timeout, a cancelled engine): ``SIGTERM`` to the whole process group, ``SIGKILL``
to it after ``grace`` seconds. When the main process exits on its own, what is left of its group
is killed too. When the engine itself dies — even by ``SIGKILL`` — the adapter's watchdog
(``_watchdog``, one process per adapter, let go by ``aclose``) kills every container it still
runs, with what they started, at once; what escaped it, the engine that reconciles the lost run
kills by the recorded identity. No orphans, but for a child that starts a session of its own
(``setsid``): it leaves the container's group and session, and nothing here can tell it apart.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from collections import deque
from contextlib import suppress
from typing import Final, Literal

import anyio
import anyio.abc

from lifecycle import Adapter, ContainerSpec, Finished, Report, process_identity
from lifecycle import events as ev

from ._lines import MAX_LINE, ByteLines
from ._oom import oom_kills, said_out_of_memory
from ._watchdog import Watchdog

__all__ = ["SubprocessAdapter"]

_TAIL: Final = 30
_DRAIN_AFTER_EXIT: Final = 2.0


def _killpg(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class SubprocessAdapter(Adapter):
    """Runs ``command`` containers as OS processes. ``grace``: seconds between ``SIGTERM`` and
    ``SIGKILL`` when stopping; ``max_line``: the longest log line, in bytes."""

    name = "subprocess"
    kinds = frozenset({"command"})

    def __init__(self, *, grace: float = 5.0, max_line: int = MAX_LINE) -> None:
        # ``watchdog``: kills this adapter's containers if the engine dies (``_watchdog``)
        self.grace = grace
        self.max_line = max_line
        self.watchdog = Watchdog()

    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        if spec.command is None:
            raise TypeError(f"the subprocess adapter runs commands; {spec.name!r} has none")
        env = {
            **os.environ,
            **spec.env,
            "LIFECYCLE_RUN_ID": str(spec.run_id),
            "LIFECYCLE_CONTAINER": spec.name,
        }
        program = spec.command[0]
        found = program if os.sep in program else shutil.which(program, path=env.get("PATH"))
        if found is None:
            error = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
            return await self._cannot_start(spec, error, report)
        argv = [found, *spec.command[1:]]
        if spec.memory_limit is not None:
            kib = max(1, spec.memory_limit // 1024)
            argv = ["/bin/sh", "-c", f'ulimit -v {kib} && exec "$@"', "sh", *argv]
        try:
            process = await anyio.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return await self._cannot_start(spec, exc, report)
        identity = process_identity(process.pid)
        unwatched = self._watch(identity)  # no await since the start: the engine may die now
        try:
            async with process:
                return await self._supervise(spec, process, report, identity, unwatched)
        finally:
            if unwatched is None and identity is not None:
                self.watchdog.forget(identity)

    async def aclose(self) -> None:
        """Let the watchdog go (it exits; it kills nothing once every container is gone)."""
        self.watchdog.close()

    def _watch(self, identity: str | None) -> str | None:
        """Put the container in the watchdog's care; ``None`` if that worked, else why not."""
        if identity is None:
            return "no process identity on this system"
        try:
            self.watchdog.watch(identity)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return f"the watchdog could not be started: {exc}"
        return None

    async def _cannot_start(
        self, spec: ContainerSpec, exc: OSError, report: Report, what: str = ""
    ) -> Finished:
        text = f"cannot start {what or repr(list(spec.command or ()))}: {exc}"
        await report(ev.LogRecorded(level="error", stream="system", text=text))
        exit_code = 127 if isinstance(exc, FileNotFoundError) else 126
        return Finished(ev.ExecutionFailed(error=text, exit_code=exit_code))

    async def _supervise(
        self,
        spec: ContainerSpec,
        process: anyio.abc.Process,
        report: Report,
        identity: str | None,
        unwatched: str | None,
    ) -> Finished:
        tail: deque[str] = deque(maxlen=_TAIL)
        drains: list[anyio.CancelScope] = []
        killed = False
        oom_before = oom_kills()
        async with anyio.create_task_group() as tg:
            assert process.stdout is not None
            assert process.stderr is not None
            tg.start_soon(self._drain, process.stdout, "stdout", report, None, drains)
            tg.start_soon(self._drain, process.stderr, "stderr", report, tail, drains)
            try:
                await report(ev.ExecutionStarted(process=identity))
                if unwatched is not None:
                    text = f"not watched (it would outlive a killed engine): {unwatched}"
                    await report(ev.LogRecorded(level="warning", stream="system", text=text))
                code = await process.wait()
            except BaseException:
                killed = True
                with anyio.CancelScope(shield=True):
                    await self._stop(process)
                    self._bound(drains, self.grace)
                raise
            finally:
                if not killed:
                    _killpg(process.pid, signal.SIGKILL)  # leftovers of the group: no orphans
                    self._bound(drains, _DRAIN_AFTER_EXIT)
        oom_after = oom_kills()
        oom_killed = oom_before is not None and oom_after is not None and oom_after > oom_before
        return self._ending(spec, code, tail, oom_killed=oom_killed)

    @staticmethod
    def _bound(drains: list[anyio.CancelScope], seconds: float) -> None:
        """Stop waiting for output after ``seconds`` (a child outside the group may hold a pipe
        open forever)."""
        deadline = anyio.current_time() + seconds
        for scope in drains:
            scope.deadline = min(scope.deadline, deadline)

    async def _drain(
        self,
        stream: anyio.abc.ByteReceiveStream,
        name: str,
        report: Report,
        tail: deque[str] | None,
        drains: list[anyio.CancelScope],
    ) -> None:
        # Shielded: output written before a stop is still recorded; ``_bound`` ends the wait.
        with anyio.CancelScope(shield=True) as scope:
            drains.append(scope)
            lines = ByteLines(self.max_line)
            stream_name: Literal["stdout", "stderr"] = "stdout" if name == "stdout" else "stderr"
            try:
                async for chunk in stream:
                    for line in lines.feed(chunk):
                        if tail is not None:
                            tail.append(line)
                        await report(ev.LogRecorded(level="info", stream=stream_name, text=line))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            for line in lines.close():
                if tail is not None:
                    tail.append(line)
                await report(ev.LogRecorded(level="info", stream=stream_name, text=line))

    async def _stop(self, process: anyio.abc.Process) -> None:
        """``SIGTERM`` to the group, ``SIGKILL`` after the grace period; reap the process."""
        if process.returncode is None:
            _killpg(process.pid, signal.SIGTERM)
            with anyio.move_on_after(self.grace):
                await process.wait()
        _killpg(process.pid, signal.SIGKILL)
        await process.wait()

    def _ending(
        self, spec: ContainerSpec, code: int, tail: deque[str], *, oom_killed: bool
    ) -> Finished:
        """The ending of a process that exited with ``code`` (see the module docstring):
        ``OutOfMemory`` only on evidence — it said so, or the kernel OOM-killed it."""
        if code == 0:
            return Finished(ev.ExecutionSucceeded())
        if said_out_of_memory(tail) or (code == -signal.SIGKILL and oom_killed):
            return Finished(ev.OutOfMemory(limit_bytes=spec.memory_limit))
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return Finished(ev.ExecutionFailed(error=f"killed by {name}", exit_code=code))
        return Finished(ev.ExecutionFailed(error=f"exited with code {code}", exit_code=code))
