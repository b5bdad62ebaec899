"""The ``inprocess`` adapter: containers are Python callables run in this process.

A coroutine function runs in the engine's event loop; any other callable runs in a worker thread
(``anyio.to_thread``, at most ``max_threads`` at once). What a callable prints (``sys.stdout``,
``sys.stderr``) and logs (``logging``, records its loggers let through) is captured *per
container* — through a context variable, so containers running side by side never mix — and
becomes ``LogRecorded`` facts on that container's stream (``stdout``/``stderr``; log records on
``stderr`` with their level). Output of threads the callable starts itself is not captured
(they do not inherit the context); it goes where it would have gone.

Endings: a return → ``ExecutionSucceeded`` (the value is handed back for the engine to store);
``MemoryError`` → ``OutOfMemory``; any other exception → ``ExecutionFailed`` with the traceback
(also logged on ``stderr``). ``memory_limit`` cannot be enforced inside a process and is ignored.

Stopping: an async callable is cancelled like any task. A thread cannot be killed: a sync
callable stops when it next calls ``anyio.from_thread.check_cancelled()``; one that does not
within ``grace`` seconds is abandoned (it runs on, unobserved) and a warning says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import io
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TextIO

import anyio
import anyio.from_thread
import anyio.lowlevel

from lifecycle import Adapter, ContainerSpec, Finished, Report
from lifecycle import events as ev

from ._lines import MAX_LINE, TextLines

__all__ = ["InProcessAdapter"]

_CURRENT: Final[contextvars.ContextVar[_Capture | None]] = contextvars.ContextVar(
    "lifecycle_adapters_capture", default=None
)


class _Capture:
    """The output of one execution, written from any thread, reported in its event loop."""

    def __init__(self, max_chars: int, report: Report) -> None:
        self._lock = threading.Lock()
        self._lines: deque[tuple[str, str, str]] = deque()  # (stream, level, text)
        self._split = {"stdout": TextLines(max_chars), "stderr": TextLines(max_chars)}
        self._report = report
        self._emitting = anyio.Lock(fast_acquire=True)  # lines leave in the order they came
        self.token = anyio.lowlevel.current_token()
        self.closed = False

    def write(self, stream: str, text: str) -> None:
        with self._lock:
            for line in self._split[stream].feed(text):
                self._lines.append((stream, "info", line))

    def log(self, level: str, text: str) -> None:
        with self._lock:
            for line in text.split("\n"):
                self._lines.append(("stderr", level, line))

    def waiting(self) -> bool:
        return bool(self._lines)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for stream, split in self._split.items():
                for line in split.close():
                    self._lines.append((stream, "info", line))

    async def emit(self) -> None:
        """Report what was captured so far (in the execution's event loop)."""
        async with self._emitting:
            with self._lock:
                lines = list(self._lines)
                self._lines.clear()
            for stream, level, text in lines:
                await self._report(
                    ev.LogRecorded(
                        level=level,
                        stream="stdout" if stream == "stdout" else "stderr",
                        text=text,
                    )
                )


class _Pump:
    """One daemon thread per adapter that, every ``interval`` seconds, has each running
    execution report what it captured so far — so output streams while a callable runs, at no
    cost per execution (no task, no timer)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._active: set[_Capture] = set()
        self._thread: threading.Thread | None = None

    def add(self, capture: _Capture) -> None:
        with self._lock:
            self._active.add(capture)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lifecycle-inprocess-pump", daemon=True
                )
                self._thread.start()

    def remove(self, capture: _Capture) -> None:
        with self._lock:
            self._active.discard(capture)

    def _run(self) -> None:
        idle = 0
        while True:
            time.sleep(self.interval)
            with self._lock:
                active = [c for c in self._active if c.waiting()]
                idle = 0 if self._active else idle + 1
                if idle > 50:  # nothing ran for a while: stop; add() starts a new thread
                    self._thread = None
                    return
            for capture in active:
                # the loop may have ended, or the run been closed: then there is nothing to do
                with contextlib.suppress(Exception):
                    anyio.from_thread.run(capture.emit, token=capture.token)


class _Router(io.TextIOBase):
    """Stands in for ``sys.stdout`` / ``sys.stderr``: text goes to the current container's
    capture, or to the stream it replaced when no container is running in this context."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        self.name_ = name
        self.fallback = fallback

    def write(self, s: str) -> int:
        capture = _CURRENT.get()
        if capture is None or capture.closed:
            return self.fallback.write(s)
        capture.write(self.name_, s)
        return len(s)

    def flush(self) -> None:
        if _CURRENT.get() is None:
            self.fallback.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _CURRENT.get() is None and self.fallback.isatty()

    def fileno(self) -> int:
        return self.fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


class _Handler(logging.Handler):
    """A root handler that hands records logged inside a container to its capture. Outside
    one it behaves as if it were not there (``logging.lastResort`` still applies)."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _CURRENT.get()
        if capture is None or capture.closed:
            root = logging.getLogger()
            last = logging.lastResort
            if root.handlers == [self] and last is not None and record.levelno >= last.level:
                last.handle(record)
            return
        try:
            capture.log(record.levelname.lower(), f"{record.name}: {self.format(record)}")
        except Exception:
            self.handleError(record)


class _Redirect:
    """Installs the routers and the handler while at least one execution runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._handler = _Handler()
        self._out: _Router | None = None
        self._err: _Router | None = None

    def __enter__(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self._out = _Router("stdout", sys.stdout)
                self._err = _Router("stderr", sys.stderr)
                sys.stdout, sys.stderr = self._out, self._err
                logging.getLogger().addHandler(self._handler)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                logging.getLogger().removeHandler(self._handler)
                # put back only what is still ours (someone may have replaced it since)
                if sys.stdout is self._out and self._out is not None:
                    sys.stdout = self._out.fallback
                if sys.stderr is self._err and self._err is not None:
                    sys.stderr = self._err.fallback
                self._out = self._err = None


_redirect = _Redirect()


class InProcessAdapter(Adapter):
    """Runs ``call`` containers in this process. ``grace``: seconds a cancelled sync callable
    gets to stop before its thread is abandoned; ``max_threads``: worker threads at once;
    ``flush_interval``: how often captured output is reported while a callable runs."""

    name = "inprocess"
    kinds = frozenset({"call"})

    def __init__(
        self,
        *,
        grace: float = 5.0,
        max_threads: int = 40,
        flush_interval: float = 0.1,
        max_line: int = MAX_LINE,
    ) -> None:
        self.grace = grace
        self.flush_interval = flush_interval
        self.max_line = max_line
        self.max_threads = max_threads
        self._limiters: dict[object, anyio.CapacityLimiter] = {}  # one per event loop
        self._pump = _Pump(flush_interval)

    def _limiter(self) -> anyio.CapacityLimiter:
        """This event loop's limiter (an adapter may serve several loops, one after another)."""
        loop = anyio.lowlevel.current_token()
        limiter = self._limiters.get(loop)
        if limiter is None:
            self._limiters = {loop: anyio.CapacityLimiter(self.max_threads)}
            limiter = self._limiters[loop]
        return limiter

    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        fn = spec.call
        if fn is None:
            raise TypeError(f"the inprocess adapter runs callables; {spec.name!r} has none")
        capture = _Capture(self.max_line, report)
        await report(ev.ExecutionStarted())
        self._pump.add(capture)
        try:
            with _redirect:
                ok, value = await self._call(fn, spec, capture)
        finally:
            self._pump.remove(capture)
            capture.close()
            with anyio.CancelScope(shield=True):
                await capture.emit()
        if ok:
            return Finished(ev.ExecutionSucceeded(), value)
        return await self._failed(spec, value, report)

    async def _call(
        self, fn: Callable[..., Any], spec: ContainerSpec, capture: _Capture
    ) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)``; only cancellation propagates."""
        token = _CURRENT.set(capture)  # copied into the worker thread's context, or seen by fn
        try:
            if inspect.iscoroutinefunction(fn):
                try:
                    return True, await fn(*spec.args, **spec.kwargs)
                except anyio.get_cancelled_exc_class():
                    raise
                except (Exception, SystemExit) as exc:
                    return False, exc
            return await self._in_thread(fn, spec)
        finally:
            _CURRENT.reset(token)

    async def _in_thread(self, fn: Callable[..., Any], spec: ContainerSpec) -> tuple[bool, Any]:
        box: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                box.append((True, fn(*spec.args, **spec.kwargs)))
            except BaseException as exc:  # handed back to the event loop, not raised in a thread
                box.append((False, exc))
            finally:
                done.set()

        try:
            await anyio.to_thread.run_sync(run, abandon_on_cancel=True, limiter=self._limiter())
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self.grace):
                    while not done.is_set():  # noqa: ASYNC110  (set by a thread, not a task)
                        await anyio.sleep(0.01)
                if not done.is_set():
                    logging.getLogger("lifecycle.adapters").warning(
                        "container %s of run %s ignored cancellation for %.1f s; its thread was "
                        "abandoned (call anyio.from_thread.check_cancelled() to cooperate)",
                        spec.name,
                        spec.run_id,
                        self.grace,
                    )
            raise
        ok, value = box[0]
        if not ok and not isinstance(value, Exception | SystemExit):
            raise value  # KeyboardInterrupt and the like are not the container's failure
        if ok and inspect.isawaitable(value):  # a sync callable that returned a coroutine
            try:
                return True, await value
            except anyio.get_cancelled_exc_class():
                raise
            except (Exception, SystemExit) as exc:
                return False, exc
        return ok, value

    async def _failed(self, spec: ContainerSpec, exc: BaseException, report: Report) -> Finished:
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return Finished(ev.ExecutionSucceeded())
        tb = "".join(traceback.format_exception(exc))
        await report(ev.LogRecorded(level="error", stream="stderr", text=tb.rstrip("\n")))
        if isinstance(exc, MemoryError):
            return Finished(ev.OutOfMemory(limit_bytes=spec.memory_limit))
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else 1
            return Finished(ev.ExecutionFailed(error=f"SystemExit({exc.code!r})", exit_code=code))
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Finished(ev.ExecutionFailed(error=error, traceback=tb))
