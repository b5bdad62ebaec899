"""Group commit for the engine: the facts of many containers of one run in one append.

``AsyncRuns.record`` appends to one stream per call, under the run's lock; an engine driving a
thousand containers of one run would pay one store round trip per fact batch per container, one
after another (on SQLite ~0.5 ms each). :func:`record_many` validates facts for several streams
of one run exactly as ``record`` does — the dialect, no ``Requested``, a run ends only with all
its containers ended (their versions are checked in the same append) — and appends them
atomically, keeping the run service's cache coherent. :class:`Batcher` collects what the
writers of a run hand it while an append is in flight and sends it as the next one.

``record_many`` works on the run service's internals (its lock, cache and folds): it belongs
next to ``record`` and could become ``AsyncRuns.record_many``.
"""

from __future__ import annotations

import builtins
import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, IdempotencyConflict, InvalidTransition, UnknownRun
from lifecycle._runs import _copy, summary_of
from lifecycle._stores import RunSummary, Write
from lifecycle._views import RunFold, StreamFold

if TYPE_CHECKING:
    from lifecycle._runs import AsyncRuns

__all__ = ["Batcher", "record_many"]

_RETRIES = 5

Item = tuple[str | None, Sequence[ev.Fact]]


async def record_many(
    runs: AsyncRuns, run_id: int, items: Sequence[Item]
) -> builtins.list[ev.Recorded]:
    """Validate and append ``(container, facts)`` pairs (``None``: the run stream) of one run in
    one atomic append. Raises what ``AsyncRuns.record`` raises; nothing is written then."""
    items = [(c, list(f)) for c, f in items if f]
    if not items:
        return []
    async with runs._lock(run_id):
        for attempt in range(_RETRIES):
            run = await runs._load(run_id, fresh=attempt > 0)
            try:
                return await _record(runs, run, items)
            except IdempotencyConflict:
                raise
            except ConcurrencyError:
                runs._cache.pop(run_id, None)  # someone else wrote: re-read, decide again
        raise ConcurrencyError(f"run {run_id}: gave up after {_RETRIES} conflicting writes")


async def _record(
    runs: AsyncRuns, run: RunFold, items: Sequence[Item]
) -> builtins.list[ev.Recorded]:
    requested = run.run.requested
    known = requested.containers if requested is not None else ()
    now = _dt.datetime.now(_dt.UTC)
    trials: dict[str | None, StreamFold] = {}
    events: dict[str | None, list[ev.Fact]] = {}
    for container, facts in items:
        if container is not None and container not in known:
            raise UnknownRun(
                f"run {run.run_id} has no container {container!r} "
                f"(containers: {', '.join(known) or 'none'})"
            )
        trial = trials.get(container)
        if trial is None:
            trial = trials[container] = _copy(run.stream(container))
            events[container] = []
        for fact in facts:
            if isinstance(fact, ev.Requested):
                raise InvalidTransition(
                    dialect=trial.dialect.name,
                    state=trial.state,
                    fact="Requested",
                    stream=trial.stream,
                    version=trial.version,
                    hint="Requested is written by create(), rerun() and resume() only.",
                )
            trial.apply(fact, now)
        events[container].extend(facts)
    writes = [
        Write(
            stream=trial.stream,
            events=tuple(events[c]),
            expected_version=run.stream(c).version,
        )
        for c, trial in trials.items()
    ]
    summaries: builtins.list[RunSummary] = []
    run_trial = trials.get(None)
    if run_trial is not None and run_trial.state is not run.run.state:
        if run_trial.outcome is not None:
            active = [
                name
                for name, acc in run.containers.items()
                if (trials.get(name) or acc).outcome is None
            ]
            if active:
                raise InvalidTransition(
                    dialect=run_trial.dialect.name,
                    state=run.run.state,
                    fact=type(events[None][-1]).__name__,
                    stream=run_trial.stream,
                    version=run.run.version,
                    hint=f"Containers {active} are still active: a terminal run has only "
                    "terminal containers. End them first, or abort() the run.",
                )
            writes += [
                Write(stream=acc.stream, expected_version=acc.version)
                for name, acc in run.containers.items()
                if name not in trials
            ]
        clone = RunFold(run.dialect, run.run_id)
        clone.run = run_trial
        clone.containers = {**run.containers, **{c: t for c, t in trials.items() if c}}
        summaries.append(summary_of(clone.view()))
    records = await runs.store.append(writes, summaries=summaries, at=now)
    last = {r.stream: r.position for r in records}
    for container, trial in trials.items():
        trial.position = last.get(trial.stream, trial.position)
        if container is None:
            run.run = trial
        else:
            run.containers[container] = trial
    return records


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
            await record_many(self.runs, self.run_id, [(p.container, p.facts) for p in batch])
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
