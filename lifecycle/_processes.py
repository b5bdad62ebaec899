"""Process identity: which OS process a container runs as, recorded so that the engine that
reconciles a dead engine's run can kill what that engine left running — and never an unrelated
process that got the same pid later.

An identity is the string ``linux:BOOT:PIDNS:PID:START``: the boot it belongs to
(``/proc/sys/kernel/random/boot_id``), the pid namespace (the inode of ``/proc/self/ns/pid``),
the pid, and the process's start time in clock ticks since boot (field 22 of
``/proc/PID/stat``). A pid alone is no identity: pids are reused, within seconds on a busy
machine (``pid_max`` is 32,768 on many). Adapters record it in ``ExecutionStarted(process=...)``
for a container that leads its own session (``setsid``), as the ``subprocess`` adapter's do.

:func:`leftovers` finds what is left of such a container: the leader if it still is the same
process, and every process of its session or process group that started no earlier than it did
(Linux does not hand a pid out again while a process group or session still bears it).
:func:`kill_leftovers` kills them through pidfds, checking each identity again on the pidfd, so
a process that exits between the look and the kill cannot be mistaken for its successor.
Elsewhere than Linux there is no identity (``None``) and nothing to kill by one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from pathlib import Path
from typing import Final, NamedTuple

__all__ = ["ProcessId", "kill_leftovers", "leftovers", "parse_identity", "process_identity"]

_PROC: Final = Path("/proc")


class ProcessId(NamedTuple):
    """A parsed identity (see the module docstring)."""

    boot: str
    pid_ns: str
    pid: int
    start: int


class _Stat(NamedTuple):
    state: str
    pgrp: int
    session: int
    start: int


def _stat(pid: int) -> _Stat | None:
    """Fields of ``/proc/PID/stat`` (``None``: no such process)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces and parentheses itself
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return _Stat(fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _here() -> tuple[str, str] | None:
    """This machine's boot id and this process's pid namespace, if readable."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    try:
        pid_ns = os.readlink(_PROC / "self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        pid_ns = "-"
    return boot, pid_ns


def process_identity(pid: int) -> str | None:
    """The identity of running process ``pid`` (``None`` off Linux or if it is gone)."""
    here, stat = _here(), _stat(pid)
    if here is None or stat is None:
        return None
    return f"linux:{here[0]}:{here[1]}:{pid}:{stat.start}"


def parse_identity(identity: str) -> ProcessId | None:
    """The parts of an identity made by :func:`process_identity` (``None`` for anything else)."""
    parts = identity.split(":")
    if len(parts) != 5 or parts[0] != "linux":
        return None
    try:
        return ProcessId(parts[1], parts[2], int(parts[3]), int(parts[4]))
    except ValueError:
        return None


def _belongs(stat: _Stat | None, who: ProcessId) -> bool:
    if stat is None or stat.state in ("Z", "X"):
        return False
    return who.pid in (stat.session, stat.pgrp) and stat.start >= who.start


def leftovers(identity: str) -> list[int]:
    """The pids still running of the container ``identity`` names (its session leader and the
    processes of that session or group): empty when the identity is of another boot or pid
    namespace (nothing here to find) or when the pid now belongs to another process."""
    who = parse_identity(identity)
    if who is None or _here() != (who.boot, who.pid_ns):
        return []
    leader = _stat(who.pid)
    if leader is not None and leader.start != who.start:
        return []  # the pid was handed out again: ours, and its session, are gone
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and _belongs(_stat(pid := int(entry.name)), who):
            found.append(pid)
    return sorted(found)


def kill_leftovers(identity: str) -> list[int]:
    """``SIGKILL`` every process :func:`leftovers` finds; return the pids killed. Each is
    checked again on a pidfd before the signal, so no other process is ever hit."""
    who = parse_identity(identity)
    if who is None:
        return []
    killed = []
    for pid in leftovers(identity):
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.ENOSYS:
                continue  # gone meanwhile, or not ours to see
            # no pidfds (Linux < 5.3): check, then kill — the pid could only be reused by a
            # process that started after the check, in the microseconds between the two
            if _belongs(_stat(pid), who):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            continue
        try:
            if _belongs(_stat(pid), who):  # the pidfd pins the process this stat describes
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    killed.append(pid)
        finally:
            os.close(fd)
    return killed
