"""Writing one stream for the engine: in order, in batches, and noticing when it was closed.

Writes go through the run's :class:`~lifecycle._engine._batch.Batcher`, so the facts of many
containers share one append. Logs are buffered and written in batches — by the run's periodic
flusher, when the buffer is full (back-pressure on the adapter), or together with the next
lifecycle fact — so a process printing a million lines costs a few thousand appends, not a
million. Bookkeeping facts (``ResourcesRequested`` while a container waits for a slot, its
preparation) are deferred the same way: they go with the adapter's ``ExecutionStarted``, or at
most ``flush_interval`` later. Every other fact is written at once, after whatever is buffered.
Writes are shielded from cancellation: an append that was sent is always known to have landed
or not.

The writer keeps its own fold of what it wrote, so the engine knows a stream's state without
reading it back. If an append is refused because the stream moved under it (someone else aborted
the run, another process ended it), the writer re-reads the stream and marks itself ``closed``
when the stream is terminal; the engine then stops that work and writes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from lifecycle import events as ev
from lifecycle._canonical import accepted
from lifecycle._errors import InvalidTransition
from lifecycle._views import StreamFold, container_stream, run_stream

from ._batch import Batcher

if TYPE_CHECKING:
    from lifecycle._dialects import Dialect
    from lifecycle._runs import AsyncRuns

__all__ = ["StreamWriter"]

BATCH: Final = 512
"""Buffered logs past which ``log`` writes at once (and so makes its caller wait)."""


class StreamWriter:
    """Writes the facts of one stream of a run (``container=None``: the run stream)."""

    def __init__(
        self,
        runs: AsyncRuns,
        run_id: int,
        container: str | None,
        dialect: Dialect,
        requested: ev.Requested,
        *,
        prior: Sequence[ev.Fact] = (),
        batcher: Batcher | None = None,
        on_dirty: Callable[[StreamWriter], None] | None = None,
        on_closed: Callable[[StreamWriter], None] | None = None,
        log: Any = None,
    ) -> None:
        self.runs = runs
        self.run_id = run_id
        self.container = container
        self.stream = (
            run_stream(run_id) if container is None else container_stream(run_id, container)
        )
        self.acc = StreamFold(dialect, self.stream)
        self.acc.apply(requested)
        for fact in prior:  # recorded before the engine took the run (the scheduler's arming)
            self.acc.apply(fact)
        self.pending: list[ev.Fact] = []
        self.closed = False
        self._batcher = batcher or Batcher(runs, run_id)
        self._lock = anyio.Lock(fast_acquire=True)
        self._on_dirty = on_dirty
        self._on_closed = on_closed
        self._log = log

    @property
    def state(self) -> str:
        return self.acc.state

    @property
    def terminal(self) -> bool:
        return self.acc.outcome is not None

    async def log(self, fact: ev.LogRecorded) -> None:
        """Buffer a log entry; write the buffer at once when it is full."""
        if self.closed:
            return
        self.pending.append(fact)
        if len(self.pending) >= BATCH:
            await self.flush()
        elif len(self.pending) == 1 and self._on_dirty is not None:
            self._on_dirty(self)

    def defer(self, facts: Sequence[ev.Fact]) -> None:
        """Buffer facts to go with the next write (or the periodic flush, at most
        ``flush_interval`` later): bookkeeping the adapter is about to follow up on."""
        if not self.closed:
            self.pending.extend(facts)
            if self._on_dirty is not None:
                self._on_dirty(self)

    async def write(self, facts: Sequence[ev.Fact]) -> bool:
        """Write what is buffered, then ``facts``, in order. ``False`` if the stream was closed
        under us (nothing more is written then)."""
        if self.closed:
            return False
        self.pending.extend(facts)
        await self.flush()
        return not self.closed

    async def flush(self) -> None:
        """Write everything buffered (waiting for a write already in flight first)."""
        async with self._lock:
            if not self.pending or self.closed:
                return
            batch, self.pending = self.pending, []
            with anyio.CancelScope(shield=True):  # an append sent is known to have landed or not
                for attempt in range(2):
                    try:
                        await self._batcher.submit(self.container, batch)
                        break
                    except InvalidTransition as exc:
                        # the stream moved under us: catch up, then retry once if it still fits
                        await self._refresh()
                        if self.terminal:
                            self._close()
                            return
                        if attempt or not self._fits(batch):
                            self._refused(exc, batch)
                            raise
            for fact in batch:
                self.acc.apply(fact)

    async def refresh(self) -> None:
        """Catch up with facts others wrote to the stream (waits for a write in flight)."""
        async with self._lock:
            with anyio.CancelScope(shield=True):
                await self._refresh()
            if self.terminal:
                self._close()

    async def _refresh(self) -> None:
        records = await self.runs.store.read([self.stream])
        if records and isinstance(records[0].event, ev.Requested):
            acc = StreamFold(self.acc.dialect, self.stream)
            for record in records:
                acc.apply(record.event, record.recorded_at, record.position)
            self.acc = acc

    def _fits(self, batch: list[ev.Fact]) -> bool:
        state = self.acc.state
        for fact in batch:
            nxt = accepted(self.acc.dialect, state, fact)
            if nxt is None:
                return False
            state = nxt
        return True

    def _close(self) -> None:
        self.closed = True
        self.pending.clear()
        if self._on_closed is not None:
            self._on_closed(self)

    def _refused(self, exc: InvalidTransition, batch: list[ev.Fact]) -> None:
        if self._log is not None:  # a bug of ours: the facts did not fit a live stream
            self._log.error(
                "facts refused",
                stream=self.stream,
                facts=[type(f).__name__ for f in batch],
                error=str(exc),
            )
