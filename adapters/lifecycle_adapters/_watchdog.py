"""A watchdog per container: its process group dies with the engine, even a ``SIGKILL``\\ ed one.

A container leads a session (and process group) of its own, so a signal to the engine's group
does not reach it — and neither does the engine's death: the kernel re-parents its processes to
PID 1 and they run on. So, next to each container, the adapter starts a watchdog: a ``/bin/sh``
(a millisecond to start, a few hundred KiB) in a session of its own, reading a pipe whose only
writer is the engine. It first reads the container's process-group id; then, when the engine
is done with the container it writes ``done`` and the watchdog exits quietly; when the engine
dies instead — however it dies — the kernel closes the pipe, ``read`` sees end-of-file, and
the watchdog sends ``SIGKILL`` to the whole group at once.

Nothing else holds the pipe's write end: ``os.pipe`` descriptors are not inherited by processes
the engine starts (close-on-exec), so neither the container nor the watchdog keep it open.
(A child made with a bare ``os.fork`` and no ``exec`` would, and would keep the watchdog
waiting until it exits.) Why a process and not ``prctl(PR_SET_PDEATHSIG)``: that signal fires
when the *thread* that started the child ends, it reaches only the child and not the
grandchildren it starts, and it needs a ``preexec_fn``, which anyio's ``open_process`` has not.

What a watchdog cannot do — it was itself killed, or a process left the group — the engine
that reconciles the dead engine's run does: it kills by the identity the container recorded
(``ExecutionStarted(process=...)``, pid and start time).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Final

import anyio
import anyio.abc

__all__ = ["Watchdog"]

SCRIPT: Final = 'read pgid || exit 0\nread done || kill -s KILL -- "-$pgid" 2>/dev/null\n'
"""The watchdog: the group to watch, then ``done`` — or end-of-file, and the group is killed."""
NAME: Final = "lifecycle-watchdog"
"""Its ``$0``: what ``ps`` shows for it."""


class Watchdog:
    """One container's watchdog. ``await Watchdog.start()``, then :meth:`watch` the container's
    process group as soon as it exists, and :meth:`release` once it is gone."""

    def __init__(self, process: anyio.abc.Process, fd: int) -> None:
        self.process = process
        self._fd: int | None = fd
        self._watching = False

    @classmethod
    async def start(cls) -> Watchdog:
        """Start a watchdog (raises ``OSError`` if ``/bin/sh`` cannot be started)."""
        read_end, write_end = os.pipe()
        try:
            process = await anyio.open_process(
                ["/bin/sh", "-c", SCRIPT, NAME],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not in the engine's group: Ctrl-C there spares it
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def watch(self, pgid: int) -> None:
        """Kill process group ``pgid`` if the engine dies from now on. Synchronous on purpose:
        called right after the container starts, with no ``await`` in between."""
        if self._fd is not None:
            with contextlib.suppress(OSError):  # it died already: reconciling is the backstop
                os.write(self._fd, b"%d\n" % pgid)
                self._watching = True

    async def release(self) -> None:
        """The container is gone: let the watchdog exit without killing anything."""
        fd, self._fd = self._fd, None
        if fd is not None:
            if self._watching:  # (not watching yet: end-of-file alone ends it quietly)
                with contextlib.suppress(OSError):  # it died already (someone killed it)
                    os.write(fd, b"done\n")
            os.close(fd)
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self.process.wait()
        await self.process.aclose()
