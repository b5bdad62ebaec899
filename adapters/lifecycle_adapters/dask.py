"""Record Dask computations as lifecycle runs: a ``distributed`` scheduler plugin (issue 13).

::

    from lifecycle_adapters.dask import LifecyclePlugin

    plugin = LifecyclePlugin("sqlite:///runs.db", dialect="datatailr", name="nightly")
    client.register_plugin(plugin)
    client.compute(graph)          # one run per compute/submit batch, a container per key
    plugin.flush()                 # wait until everything is recorded; raise what went wrong

Each batch of tasks the scheduler receives (``update_graph``: one ``client.compute`` /
``submit`` / ``map``) becomes a run named ``name`` (default ``dask``), with one container per
key, named ``str(key)``, added with ``ContainerAdded(depends_on=...)``. Task transitions become
phases (``Runs.advance_many``: the facts each dialect needs), and the run ends by its dialect's
aggregation policy once every key has ended (``Runs.finish``):

=========================================  =====================================================
Dask                                       lifecycle
=========================================  =====================================================
a key already in memory when submitted     succeeded, ``cached_from`` the run that computed it
→ waiting / queued / no-worker             queued (from processing: a retry, ``Requeued``;
                                           ``worker_lost`` when a worker left)
→ processing                               started
processing → memory                        succeeded
processing → erred                         failed (the exception text)
erred by an upstream key (blame elsewhere) cancelled, ``upstream_failed``
erred with ``KilledWorker``                lost (``InfrastructureFailed(worker_lost)``)
→ forgotten before it ended (cancel)       cancelled
=========================================  =====================================================

**Off the scheduler's hot path.** Hooks run inside the scheduler's event loop; a hook only puts
a tuple on a queue (~1 µs; measured in ``benchmarks/bench_dask_plugin.py``). A writer thread
drains the queue and writes each run's moves in one append. Dask logs and swallows exceptions
raised in plugin hooks, so the writer never raises into Dask: every lifecycle error is kept in
``errors``, logged, and raised by the next ``flush()`` / ``close()`` as an ``ExceptionGroup``.

**Where it runs.** ``register_plugin`` pickles the plugin to the scheduler. With a
``LocalCluster`` (the scheduler in this process) the scheduler gets *this* object back, so
``flush()`` and ``errors`` work directly. On a remote scheduler a copy opens the store by its URL
there; reach it with ``client.run_on_scheduler``.

The other direction — the engine running its containers *on* a Dask cluster — is the ``dask``
adapter, :class:`~lifecycle_adapters.dask_adapter.DaskAdapter`, re-exported here.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, Final

from distributed.diagnostics.plugin import SchedulerPlugin

from lifecycle import LifecycleError, Runs
from lifecycle import events as ev

from .dask_adapter import DaskAdapter

__all__ = ["DaskAdapter", "LifecyclePlugin"]

_log = logging.getLogger("lifecycle.dask")

_LIVE: weakref.WeakValueDictionary[str, LifecyclePlugin] = weakref.WeakValueDictionary()
"""Plugins of this process by token: unpickled here, a plugin is the same object again."""

_OPERATION: Final = {"qualytics": "scan"}
"""The operation of a run for dialects where only some operations have containers."""

_REQUEUE_CAUSES: Final = ("remove-worker", "handle-worker-cleanup", "worker-left")


def _revive(token: str, store: str, dialect: str, name: str, interval: float) -> LifecyclePlugin:
    live = _LIVE.get(token)
    if live is not None:
        return live
    return LifecyclePlugin(store, dialect=dialect, name=name, interval=interval, token=token)


class LifecyclePlugin(SchedulerPlugin):
    """Records every computation the scheduler runs as a lifecycle run (module docstring).

    ``store`` is a store URL (``sqlite:///runs.db``; ``memory://`` only with a scheduler in
    this process). ``name`` names the runs; ``interval`` is the longest a fact waits in the
    queue before the writer takes it (seconds).
    """

    idempotent = False

    def __init__(
        self,
        store: str = "memory://",
        *,
        dialect: str = "datatailr",
        name: str = "dask",
        interval: float = 0.2,
        token: str | None = None,
    ) -> None:
        if not isinstance(store, str):
            raise TypeError(f"store must be a store URL (str), not {type(store).__name__}")
        self.store, self.dialect, self.run_name, self.interval = store, dialect, name, interval
        self.token = token or uuid.uuid4().hex
        self.name = f"lifecycle-{dialect}-{self.token[:8]}"  # the scheduler's key for it
        self.errors: list[Exception] = []
        self._unraised: list[Exception] = []
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._taken = 0  # items put on the queue
        self._done = 0  # items the writer has finished with
        self._closing = False
        self._flushing = False
        self._broken = False
        self._thread: threading.Thread | None = None
        self._runs: Runs | None = None
        self._batches = itertools.count(1)
        # writer-thread state
        self._runs_of: dict[str, list[int]] = {}  # key → active runs that have it
        self._open: dict[int, set[str]] = {}  # run → keys not ended yet
        self._computed_by: dict[str, int] = {}  # key → the run that computed it
        self.run_ids: list[int] = []  # every run recorded, in order
        _LIVE[self.token] = self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_revive, (self.token, self.store, self.dialect, self.run_name, self.interval))

    # -- the hooks: the scheduler's hot path, so a tuple on a queue and nothing else ---------

    def update_graph(
        self,
        scheduler: Any,
        *,
        tasks: list[Any] | None = None,
        keys: Any = None,
        **kwargs: Any,
    ) -> None:
        states = scheduler.tasks
        added: list[tuple[str, tuple[str, ...], bool]] = []
        for key in tasks or ():
            ts = states.get(key)
            deps = tuple(str(d.key) for d in ts.dependencies) if ts is not None else ()
            added.append((str(key), deps, ts is not None and ts.state == "memory"))
        self._put(("graph", added))

    def transition(
        self, key: Any, start: str, finish: str, *args: Any, stimulus_id: str = "", **kwargs: Any
    ) -> None:
        if finish == "processing":
            self._put(("move", str(key), "started", None))
        elif finish == "memory":
            self._put(("move", str(key), "succeeded", None))
        elif finish in ("waiting", "queued", "no-worker"):
            lost = any(cause in stimulus_id for cause in _REQUEUE_CAUSES)
            self._put(("move", str(key), "queued", "worker_lost" if lost else "retry"))
        elif finish == "erred":
            text = str(kwargs.get("exception_text") or "")
            if "KilledWorker" in text:
                self._put(("move", str(key), "lost", "worker_lost"))
            elif start == "processing":
                self._put(("move", str(key), "failed", text or "error"))
            else:
                self._put(("move", str(key), "cancelled", "upstream_failed"))
        elif finish == "forgotten":
            self._put(("move", str(key), "cancelled", "cancelled"))

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._broken or self._closing:
            return  # the writer died (its error is in ``errors``) or was closed
        self._taken += 1
        self._queue.append(item)
        if self._thread is None:
            self._start_writer()
        elif self._flushing:
            self._wake.set()  # someone waits in flush(): no batching delay

    async def close(self) -> None:  # the scheduler closes
        self._stop_writer()

    # -- the user's side ----------------------------------------------------------------------

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until everything the hooks queued is written, then raise the lifecycle errors
        met since the last flush (an ``ExceptionGroup``), if any."""
        self._flushing = True
        self._wake.set()
        try:
            with self._idle:
                if not self._idle.wait_for(lambda: self._done >= self._taken, timeout):
                    left = self._taken - self._done
                    raise TimeoutError(f"lifecycle plugin: {left} facts unwritten")
        finally:
            self._flushing = False
        errors, self._unraised = self._unraised, []
        if errors:
            raise ExceptionGroup(f"lifecycle plugin: {len(errors)} errors", errors)

    def close_writer(self, timeout: float = 60.0) -> None:
        """``flush()``, then stop the writer thread and close the store. Runs whose keys have
        not all ended are finished by their policy, the keys still active stopped
        (``plugin_closed``); what Dask does afterwards is no longer recorded."""
        try:
            self.flush(timeout)
        finally:
            self._stop_writer()

    # -- the writer thread --------------------------------------------------------------------

    def _start_writer(self) -> None:
        with self._idle:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._write_loop, name=f"{self.name}-writer", daemon=True
                )
                self._thread.start()

    def _stop_writer(self) -> None:
        self._closing = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    def _write_loop(self) -> None:
        try:
            with Runs(self.store) as runs:
                self._runs = runs
                while True:
                    self._wake.wait(self.interval)
                    self._wake.clear()
                    batch = []
                    while self._queue:
                        batch.append(self._queue.popleft())
                    if batch:
                        self._write(runs, batch)
                    with self._idle:
                        self._done += len(batch)
                        self._idle.notify_all()
                    if self._closing and not self._queue:
                        self._finish_open(runs)
                        return
        except Exception as exc:  # the store cannot be opened, or a bug: never silent
            self._failed(exc)
            self._broken = True
            with self._idle:
                self._done = self._taken
                self._idle.notify_all()

    def _finish_open(self, runs: Runs) -> None:
        """Closing: end the runs whose keys have not all ended, by their dialect's policy
        (what is still active is stopped with reason ``plugin_closed``)."""
        for run_id in list(self._open):
            del self._open[run_id]
            try:
                runs.finish(run_id, reason="plugin_closed", by="dask")
            except LifecycleError as exc:
                self._failed(exc)
        self._runs_of.clear()

    def _failed(self, exc: Exception) -> None:
        _log.warning("lifecycle plugin: %s", exc)
        self.errors.append(exc)
        self._unraised.append(exc)

    def _write(self, runs: Runs, batch: list[tuple[Any, ...]]) -> None:
        moves: dict[int, list[Any]] = {}
        for item in batch:
            if item[0] == "graph":
                self._graph(runs, item[1], moves)
                continue
            _, key, phase, detail = item
            for run_id in self._runs_of.get(key, ()):
                moves.setdefault(run_id, []).append((key, phase, _details(phase, detail)))
                if phase in ("succeeded", "failed", "lost", "cancelled"):
                    self._open[run_id].discard(key)
                    if phase == "succeeded":
                        self._computed_by[key] = run_id
            if phase in ("succeeded", "failed", "lost", "cancelled"):
                self._runs_of.pop(key, None)
        for run_id, run_moves in moves.items():
            self._advance(runs, run_id, run_moves)
        for run_id in list(moves):
            if not self._open.get(run_id, True):
                del self._open[run_id]
                try:
                    runs.finish(run_id, reason="graph_done", by="dask")
                except LifecycleError as exc:
                    self._failed(exc)

    def _graph(
        self, runs: Runs, added: list[tuple[str, tuple[str, ...], bool]], moves: Any
    ) -> None:
        """A batch of tasks: a new run, its containers, the keys already computed."""
        try:
            run = runs.create(
                self.dialect, name=self.run_name, operation=_OPERATION.get(self.dialect)
            )
        except LifecycleError as exc:
            self._failed(exc)
            return
        self.run_ids.append(run.id)
        first: list[Any] = [(None, "started")]
        keys: set[str] = set()
        for key, deps, cached in added:
            if key in keys:
                continue
            keys.add(key)
            first.append((None, ev.ContainerAdded(name=key, depends_on=deps)))
            if cached:
                first.append((key, "succeeded", {"cached_from": self._computed_by.get(key)}))
            else:
                self._runs_of.setdefault(key, []).append(run.id)
        self._open[run.id] = {k for k, _, cached in added if not cached}
        self._advance(runs, run.id, first)
        if not self._open[run.id]:
            moves.setdefault(run.id, [])  # nothing left to run: finish it with this batch

    def _advance(self, runs: Runs, run_id: int, moves: list[Any]) -> None:
        try:
            runs.advance_many(run_id, moves, skip_closed=True)
        except LifecycleError:
            # one bad move must not lose the others: write them one by one, keep each error
            for move in moves:
                try:
                    runs.advance_many(run_id, [move], skip_closed=True)
                except LifecycleError as exc:
                    exc.add_note(f"dask: run {run_id}, move {move[1]!r} of {move[0]!r}")
                    self._failed(exc)


def _details(phase: str, detail: str | None) -> Mapping[str, Any]:
    if detail is None:
        return {}
    if phase == "failed":
        return {"error": detail}
    return {"reason": detail}
