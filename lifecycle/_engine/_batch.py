"""Group commit for the engine: the facts of many containers of one run in one append.

An engine driving a thousand containers of one run would pay one store round trip per fact
batch per container, one after another (on SQLite ~0.5 ms each). :class:`Batcher` collects what
the writers of a run hand it while an append is in flight and sends it as the next one, through
``AsyncRuns.record_many`` (validated exactly as ``record`` is, appended atomically).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from lifecycle import events as ev
from lifecycle._errors import InvalidTransition, UnknownRun

if TYPE_CHECKING:
    from lifecycle._runs import AsyncRuns

__all__ = ["Batcher"]


class _Pending:
    __slots__ = ("container", "done", "error", "facts")

    def __init__(self, container: str | None, facts: Sequence[ev.Fact]) -> None:
        self.container = container
        self.facts = facts
        self.done = anyio.Event()
        self.error: BaseException | None = None


class Batcher:
    """Appends what the writers of one run submit, many streams per append.

    The first submitter becomes the leader: it appends everything queued, then whatever was
    queued meanwhile, until the queue is empty; the others wait for their batch. A batch that is
    refused is retried stream by stream, so one closed stream does not refuse the others.
    """

    def __init__(self, runs: AsyncRuns, run_id: int) -> None:
        self.runs = runs
        self.run_id = run_id
        self._queue: list[_Pending] = []
        self._busy = False

    async def submit(self, container: str | None, facts: Sequence[ev.Fact]) -> None:
        """Append ``facts`` to one stream of the run, together with whatever else is queued.
        Raises what ``AsyncRuns.record`` raises, for these facts only."""
        item = _Pending(container, facts)
        self._queue.append(item)
        if self._busy:
            with anyio.CancelScope(shield=True):
                await item.done.wait()
        else:
            self._busy = True
            try:
                with anyio.CancelScope(shield=True):
                    while self._queue:
                        batch, self._queue = self._queue, []
                        await self._commit(batch)
            finally:
                self._busy = False
        if item.error is not None:
            raise item.error

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await self.runs.record_many(self.run_id, [(p.container, p.facts) for p in batch])
        except (InvalidTransition, UnknownRun) as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for item in batch:  # find the one(s) at fault; the others still go in
                    await self._commit([item])
                return
        except Exception as exc:
            for item in batch:
                item.error = exc
        for item in batch:
            item.done.set()
