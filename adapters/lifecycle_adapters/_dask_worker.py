"""The worker side of the ``dask`` adapter: what a Dask worker runs for one container.

:func:`run_container` is the Dask task. A Dask task cannot be interrupted (it is a thread of
the worker), so it does no user work itself: it starts the container as a **child process** of
the worker — the command, or ``python .../lifecycle_adapters/_dask_child.py`` for a Python call —
in a session of its own (so it leads its process group), and supervises it:

- every line the child writes (split, capped and decoded by ``_lines.ByteLines``, as the
  ``subprocess`` adapter does) goes back at once through the worker's ``log_event`` on the
  adapter's topic, which the scheduler forwards to the engine's ``subscribe_topic`` handler;
  so does a ``started`` message with the worker's address and the child's pid. Each message
  counts; the task returns the count, so the engine knows when it has them all;
- ``memory_limit`` is the child's ``RLIMIT_AS`` (allocations past it fail: ``MemoryError``);
  the task reports ``oom`` on the same evidence as the ``subprocess`` adapter (``_oom``);
- the child gets ``PR_SET_PDEATHSIG`` = ``SIGKILL`` (Linux): when the worker dies, so does it;
  a command gets it and its limit from a ``preexec_fn`` (which makes ``subprocess`` fork the
  whole worker: ~7 ms for a 200 MB worker here, against ~1.5 ms for its ``vfork``), a call's
  process sets both itself as it starts (``PARENT_ENV``, ``LIMIT_ENV``; ``_dask_child``);
- the return value of a call is read back from the child's output file as pickled bytes and
  returned as they are (the engine unpickles them; the worker never needs the user's classes).

:func:`stop_container` is what the engine runs on every worker (``Client.run``, in the worker's
event loop, not a task slot) to stop a container: ``SIGTERM`` to the child's group, ``SIGKILL``
after the grace period, and it returns once the child is gone. A stop that arrives before the
task started is remembered, and the task then starts nothing. As a safety net (the engine died,
or its future was released), a watcher thread stops the child when the worker no longer holds
the task as executing.

Resubmission: a worker that dies mid-task makes the scheduler run the task again elsewhere (up
to ``distributed.scheduler.allowed-failures`` times). A container has side effects, so the
task first *claims* it (a ``distributed.Event`` named after it); a task that finds the claim
taken starts nothing and returns ``lost``, which the engine records as
``InfrastructureFailed(worker_lost)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from typing import IO, Any, Final

import distributed

from ._lines import ByteLines
from ._oom import oom_kills, said_out_of_memory

__all__ = ["LIMIT_ENV", "PARENT_ENV", "claim_name", "run_container", "stop_container"]

_TAIL: Final = 30
_DRAIN_AFTER_EXIT: Final = 2.0
_WATCH_INTERVAL: Final = 0.5
_EARLY_STOPS_KEPT: Final = 3600.0
_PR_SET_PDEATHSIG: Final = 1

_CHILD: Final = os.path.join(os.path.dirname(__file__), "_dask_child.py")  # a script: no -m
PARENT_ENV: Final = "LIFECYCLE_DASK_PARENT"
"""Tells a call's process the worker's pid (it checks it still has that parent)."""
LIMIT_ENV: Final = "LIFECYCLE_DASK_MEMORY_LIMIT"
"""Tells a call's process its ``RLIMIT_AS``, in bytes."""
_LOCK: Final = threading.Lock()
_RUNNING: dict[str, _Child] = {}
_STOPPED_EARLY: dict[str, float] = {}  # key → when a stop came for a task not yet started

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
except OSError:  # pragma: no cover  (no C library by that name: no parent-death signal)
    _LIBC = None


def claim_name(key: str) -> str:
    """The name of the ``distributed.Event`` that marks container ``key`` as started once."""
    return f"{key}-claim"


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class _Child:
    """A running child process and how to stop it."""

    def __init__(self, process: subprocess.Popen[bytes], grace: float) -> None:
        self.process = process
        self.grace = grace
        self.done = threading.Event()  # set once the child is reaped
        self.stopped = False
        self._lock = threading.Lock()

    def stop_soon(self) -> None:
        """``SIGTERM`` to the group now, ``SIGKILL`` after the grace period; returns at once."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
        _killpg(self.process.pid, signal.SIGTERM)
        timer = threading.Timer(self.grace, self._kill)
        timer.daemon = True
        timer.start()

    def _kill(self) -> None:
        if not self.done.is_set():
            _killpg(self.process.pid, signal.SIGKILL)


class _Sender:
    """Messages to the engine through the worker's ``log_event``, counted."""

    def __init__(self, worker: distributed.Worker, topic: str, key: str) -> None:
        self.worker = worker
        self.topic = topic
        self.key = key
        self.count = 0
        self._lock = threading.Lock()

    def send(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self.count += 1
            self.worker.log_event(self.topic, {"id": self.key, "kind": kind, **fields})


def _preexec(memory_limit: int | None) -> Any:
    def run() -> None:  # in the child, between fork and exec
        if _LIBC is not None and sys.platform == "linux":
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return run


def _drain(
    stream: IO[bytes], name: str, sender: _Sender, max_line: int, tail: deque[str] | None
) -> None:
    lines = ByteLines(max_line)
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out = lines.feed(chunk)
        if out:
            if tail is not None:
                tail.extend(out)
            sender.send("lines", stream=name, lines=out)
    out = lines.close()
    if out:
        if tail is not None:
            tail.extend(out)
        sender.send("lines", stream=name, lines=out)


def _watch(child: _Child, worker: distributed.Worker, key: str) -> None:
    """Stop the child once the worker no longer runs the task (its client is gone)."""
    while not child.done.wait(_WATCH_INTERVAL):
        task = worker.state.tasks.get(key)
        if task is None or task.state != "executing":
            child.stop_soon()
            return


def run_container(
    key: str,
    *,
    topic: str,
    command: list[str] | None,
    payload: bytes | None,
    env: dict[str, str],
    memory_limit: int | None,
    grace: float,
    max_line: int,
) -> dict[str, Any]:
    """The Dask task: run one container (``command``, or the pickled call ``payload``) in a
    child process and return how it ended, as a dict of plain values (see the module
    docstring): ``code``, ``oom``, ``stopped``, ``outcome`` (a call's pickled result), or
    ``lost`` / ``cannot_start``; always ``worker`` and ``sent`` (messages sent)."""
    worker = distributed.get_worker()
    sender = _Sender(worker, topic, key)
    base: dict[str, Any] = {"worker": worker.address}
    claim = distributed.Event(claim_name(key))
    if claim.is_set():
        return {**base, "lost": True, "sent": 0}
    claim.set()
    with _LOCK:
        if _STOPPED_EARLY.pop(key, None) is not None:
            return {**base, "stopped": True, "code": None, "sent": 0}
    full_env = {**os.environ, **env}
    with tempfile.TemporaryDirectory(prefix="lifecycle-dask-") as tmp:
        out_path = os.path.join(tmp, "out.pkl")
        if payload is not None:
            in_path = os.path.join(tmp, "in.pkl")
            with open(in_path, "wb") as f:
                f.write(payload)
            argv = [sys.executable, _CHILD, in_path, out_path]
            full_env["PYTHONUNBUFFERED"] = "1"
            full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            # the call's process sets these itself: no preexec_fn, so no fork of the worker
            full_env[PARENT_ENV] = str(os.getpid())
            if memory_limit is not None:
                full_env[LIMIT_ENV] = str(memory_limit)
        else:
            assert command is not None
            program = command[0]
            found = program if os.sep in program else shutil.which(program, path=full_env["PATH"])
            if found is None:
                error = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
                text = f"cannot start {command!r}: {error}"
                return {**base, "cannot_start": text, "exit_code": 127, "sent": 0}
            argv = [found, *command[1:]]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                start_new_session=True,
                # prctl and setrlimit only; a call's process does both itself (see above)
                preexec_fn=None if payload is not None else _preexec(memory_limit),  # noqa: PLW1509
            )
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            text = f"cannot start {command or argv!r}: {exc}"
            return {**base, "cannot_start": text, "exit_code": code, "sent": 0}
        result = _supervise(
            process, key=key, worker=worker, sender=sender, grace=grace, max_line=max_line
        )
        if payload is not None and os.path.exists(out_path):
            with open(out_path, "rb") as f:
                result["outcome"] = f.read()
    return {**base, **result, "sent": sender.count}


def _supervise(
    process: subprocess.Popen[bytes],
    *,
    key: str,
    worker: distributed.Worker,
    sender: _Sender,
    grace: float,
    max_line: int,
) -> dict[str, Any]:
    child = _Child(process, grace)
    with _LOCK:
        _RUNNING[key] = child
        early = _STOPPED_EARLY.pop(key, None) is not None
    readers: list[threading.Thread] = []
    try:
        if early:
            child.stop_soon()
        oom_before = oom_kills()
        tail: deque[str] = deque(maxlen=_TAIL)
        assert process.stdout is not None
        assert process.stderr is not None
        sender.send("started", worker=worker.address, pid=process.pid)
        readers += [
            threading.Thread(
                target=_drain, args=(process.stdout, "stdout", sender, max_line, None), daemon=True
            ),
            threading.Thread(
                target=_drain, args=(process.stderr, "stderr", sender, max_line, tail), daemon=True
            ),
        ]
        for reader in readers:
            reader.start()
        threading.Thread(target=_watch, args=(child, worker, key), daemon=True).start()
        code = process.wait()
        child.done.set()
        _killpg(process.pid, signal.SIGKILL)  # what is left of its group: no orphans
        deadline = time.monotonic() + _DRAIN_AFTER_EXIT
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        oom_after = oom_kills()
    finally:
        child.done.set()
        with _LOCK:
            _RUNNING.pop(key, None)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None and not any(r.is_alive() for r in readers):
                pipe.close()
    killed_by_kernel = (
        code == -signal.SIGKILL
        and oom_before is not None
        and oom_after is not None
        and oom_after > oom_before
    )
    oom = code != 0 and not child.stopped and (said_out_of_memory(tail) or killed_by_kernel)
    return {"code": code, "oom": oom, "stopped": child.stopped, "pid": process.pid}


async def stop_container(key: str) -> bool:
    """Stop container ``key`` if this worker runs it (see the module docstring); ``True``
    once its child is gone, ``False`` when it does not run here (the stop is remembered)."""
    now = time.monotonic()
    with _LOCK:
        child = _RUNNING.get(key)
        if child is None:
            for old in [k for k, t in _STOPPED_EARLY.items() if now - t > _EARLY_STOPS_KEPT]:
                del _STOPPED_EARLY[old]
            _STOPPED_EARLY[key] = now
            return False
    child.stop_soon()
    deadline = now + child.grace + 5.0
    while not child.done.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110  (a thread sets it)
        await asyncio.sleep(0.02)
    return True
