"""The watchdog: what a ``subprocess`` adapter started dies with the engine, even a ``SIGKILL``\\ ed
one.

A container leads a session (and process group) of its own, so a signal to the engine's group
does not reach it — and neither does the engine's death: the kernel re-parents its processes to
PID 1 and they run on. So each adapter starts one watchdog: a small Python process (this file,
run as a script with ``-I -S``: the standard library only, ~20 ms once) in a session of its own,
reading a pipe whose only writer is the engine. For each container the adapter writes
``+ IDENTITY`` when it starts and ``- IDENTITY`` when it is gone (a few microseconds each); when
the engine dies — however it dies — the kernel closes the pipe, the watchdog reads end-of-file
and kills, by identity, every container still listed: the process and every process of its
session and group that started after it (``lifecycle._processes.kill_leftovers``: pid *and*
start time, checked again on a pidfd; never a pid alone). When the adapter is closed, the pipe
closes with nothing listed and the watchdog exits.

Nothing else holds the pipe's write end: ``os.pipe`` descriptors are not inherited by processes
the engine starts (close-on-exec), so neither containers nor the watchdog keep it open. (A child
made with a bare ``os.fork`` and no ``exec`` would, and would keep the watchdog waiting until it
exits.) The watchdog is started through ``/bin/sh … &`` so that it is not the engine's child:
nobody has to reap it, whether or not the adapter is ever closed.

Why a process and not ``prctl(PR_SET_PDEATHSIG)``: that signal fires when the *thread* that
started the child ends, it reaches only the child and not the grandchildren it starts, and it
needs a ``preexec_fn``, which anyio's ``open_process`` does not take.

What a watchdog cannot do — it was itself killed — the engine that reconciles the dead engine's
run does, by the identity the container recorded in ``ExecutionStarted(process=...)``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import threading
import weakref
from typing import Final

__all__ = ["NAME", "Watchdog"]

NAME: Final = "lifecycle-watchdog"
"""An argument of the watchdog's command line: what ``ps`` shows for it."""

_LAUNCH: Final = 'exec 3<&0\n"$@" <&3 3<&- >/dev/null 2>&1 &\necho $!\n'
"""Start the watchdog in the background (so PID 1 adopts it) with the pipe — the launcher's
stdin, kept as fd 3: a background job's stdin is ``/dev/null`` otherwise — as its stdin."""


class Watchdog:
    """One adapter's watchdog (see the module docstring). Thread-safe; started on first use,
    started again if someone killed it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._closer: weakref.finalize[[int], Watchdog] | None = None
        self.pid: int | None = None

    def watch(self, identity: str) -> None:
        """Kill ``identity``'s process and session if the engine dies from now on. Synchronous
        on purpose: called right after the container starts, with no ``await`` in between."""
        self._send(f"+ {identity}\n")

    def forget(self, identity: str) -> None:
        """``identity`` is gone (its group was killed): nothing to do for it any more."""
        self._send(f"- {identity}\n", start=False)

    def close(self) -> None:
        """Let the watchdog exit (it kills what is still listed: nothing, normally)."""
        with self._lock:
            self._fd = None
            if self._closer is not None:
                self._closer()

    def _send(self, line: str, *, start: bool = True) -> None:
        with self._lock:
            for _ in range(2):
                if self._fd is None:
                    if not start:
                        return
                    self._start()
                assert self._fd is not None
                try:
                    os.write(self._fd, line.encode())
                    return
                except OSError:  # it was killed: start another (reconciling covers the gap)
                    self._fd = None
                    if self._closer is not None:
                        self._closer()

    def _start(self) -> None:
        import lifecycle._processes as processes  # noqa: PLC0415  (its path, for the script)

        read_end, write_end = os.pipe()
        try:
            command = [sys.executable, "-I", "-S", __file__, str(processes.__file__), NAME]
            launcher = subprocess.run(
                ["/bin/sh", "-c", _LAUNCH, "sh", *command],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not in the engine's group: Ctrl-C there spares it
                check=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self.pid = int(launcher.stdout)
        self._fd = write_end
        # an adapter never closed still lets its watchdog go when it is collected
        self._closer = weakref.finalize(self, os.close, write_end)


def _main(processes_path: str) -> None:
    """The watchdog itself: list identities, kill those still listed at end-of-file."""
    spec = importlib.util.spec_from_file_location("lifecycle_processes", processes_path)
    assert spec is not None
    assert spec.loader is not None
    processes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(processes)
    watched: dict[str, int] = {}
    for raw in sys.stdin.buffer:
        op, _, identity = raw.decode(errors="replace").strip().partition(" ")
        if op == "+":
            watched[identity] = watched.get(identity, 0) + 1
        elif op == "-" and watched.get(identity, 0) > 0:
            watched[identity] -= 1
    for identity, count in watched.items():
        if count > 0:
            with contextlib.suppress(Exception):  # kill what can be killed, whatever fails
                processes.kill_leftovers(identity)


if __name__ == "__main__":
    _main(sys.argv[1])
