"""Evidence of running out of memory: when a container's ending is ``OutOfMemory``.

A ``SIGKILL`` the adapter did not send is not, by itself, out of memory: anyone may send one (an
operator, a supervisor, ``kill -9``). So the adapter reports ``OutOfMemory`` only on evidence:

- the process said so as it failed: ``MemoryError`` (Python; what ``memory_limit`` —
  ``RLIMIT_AS`` — produces, since allocations past it fail), ``std::bad_alloc``, ``Cannot
  allocate memory`` (``ENOMEM``) or ``out of memory`` among the last lines of its stderr;
- it died of ``SIGKILL`` and the kernel's count of OOM kills went up while it ran: the
  ``oom_kill`` line of the adapter's cgroup's ``memory.events`` (cgroup v2, which counts the
  whole subtree), else of ``/proc/vmstat`` (the machine's; on cgroup v1 and older setups).

Otherwise a death by signal is ``ExecutionFailed`` naming the signal (``killed by SIGKILL``,
exit code -9). The counter is the machine's where cgroup v2 is not there: a kill from outside
at the very moment the kernel OOM-kills some other process is read as out of memory.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["MARKERS", "oom_kills", "said_out_of_memory"]

MARKERS: Final = re.compile(
    r"MemoryError|std::bad_alloc|Cannot allocate memory|out of memory", re.IGNORECASE
)


def said_out_of_memory(tail: Iterable[str]) -> bool:
    """Whether the last lines of a failed process's stderr say it ran out of memory."""
    return any(MARKERS.search(line) for line in tail)


def _read_counter(path: Path) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


@functools.cache
def _counter_file() -> Path | None:
    """Where the kernel counts OOM kills for processes this one starts (see the docstring)."""
    try:
        groups = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        groups = []
    for line in groups:
        if line.startswith("0::"):
            events = Path("/sys/fs/cgroup", line[3:].lstrip("/"), "memory.events")
            if _read_counter(events) is not None:
                return events
    vmstat = Path("/proc/vmstat")
    return vmstat if _read_counter(vmstat) is not None else None


def oom_kills() -> int | None:
    """The kernel's count of OOM kills (``None``: not readable here, so no evidence)."""
    path = _counter_file()
    return None if path is None else _read_counter(path)
