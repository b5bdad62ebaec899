"""Driving one run: containers as their dependencies finish, facts as the adapter reports them,
the dialect's aggregation policy at the end.

Per run, one task group holds: a task per container, the lease keeper, a watcher of the run
stream (to notice a stop requested or an ending written by someone else, e.g. ``runs.abort()``
from another process), and the periodic log flusher. Each container runs inside its own cancel
scope — cancelled by an abort, by a foreign ending, or when the lease is lost — and its execution
inside a second one whose deadline is the start timeout until ``ExecutionStarted`` is reported,
then the container's ``timeout``.

What each container stream receives (the canonical sequence, ``lifecycle._canonical``):
``ResourcesRequested`` (when a slot of ``max_parallel`` is free, or as soon as it waits for
one), ``ResourcesAssigned`` + ``PreparationStarted`` (it has a slot), ``ExecutionStarted``
(reported by the adapter), logs, then ``ResultStored`` and ``ExecutionSucceeded``, or
``ExecutionFailed`` / ``OutOfMemory`` / ``InfrastructureFailed(timeout | start_timeout |
adapter_error | engine_stopped)``, or the stop sequence (``user``, ``upstream_failed``).
"""

from __future__ import annotations

import hashlib
import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio

from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, accepted, stop_facts
from lifecycle._dialects import Dialect
from lifecycle._errors import LifecycleError, StoreError
from lifecycle._leases import LeaseTimes, end_run
from lifecycle._logging import get_logger
from lifecycle._policy import run_ending, verdict
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView, StreamFold, run_stream

from ._adapter import REPORTABLE, Adapter, Finished
from ._batch import Batcher
from ._results import decode_result, encode_result, load_result, result_key
from ._spec import Container, ContainerSpec, Upstream, placeholders, resolve_args
from ._writer import StreamWriter

__all__ = ["RunDriver", "Settings"]

SHUTDOWN_TIMEOUT: Final = 10.0
"""How long a cancelled engine spends recording ``engine_stopped`` endings."""
KEEP_IN_MEMORY: Final = 1 << 20
"""Results up to this size stay in memory for the run's dependents; larger ones are re-read."""

_log = get_logger("lifecycle.engine")


@dataclass(frozen=True, slots=True)
class Settings:
    """What every run of one engine shares."""

    runs: AsyncRuns
    adapter: Adapter
    slots: anyio.Semaphore
    owner: str
    start_timeout: float | None
    lease: LeaseTimes
    flush_interval: float
    watch_interval: float


class _Slot:
    """One container of a run being driven."""

    def __init__(self, spec: Container, writer: StreamWriter, log: Any) -> None:
        self.spec = spec
        self.requires = spec.requires  # computed once: it walks args for placeholders
        self.writer = writer
        self.log = log
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.exec_scope: anyio.CancelScope | None = None
        self.started = False
        self.deadline = math.inf
        self.timed_out: str | None = None
        self.upstream_failed: str | None = None
        self.cached: tuple[ev.ResultStored | None, int] | None = None
        self.result: ev.ResultStored | None = None
        self.encoded: tuple[str, bytes] | None = None
        self.outcome: str | None = None
        self.ending: ev.Fact | None = None


class RunDriver:
    """Drives one run to its end. Made by ``Engine.submit``; ``drive`` runs it."""

    def __init__(
        self,
        settings: Settings,
        *,
        view: RunView,
        dialect: Dialect,
        requested: ev.Requested,
        containers: Sequence[Container],
        cached: dict[str, tuple[ev.ResultStored | None, int]],
        folded: bool,
        prior: Sequence[ev.Fact] = (),
    ) -> None:
        self.settings = settings
        self.runs = settings.runs
        self.run_id = view.run_id
        self.dialect = dialect
        self.folded = folded
        self.log = _log.bind(run_id=view.run_id, dialect=dialect.name, name=view.name)
        self.done = anyio.Event()
        self.driving = False
        self.stopping: tuple[str, str] | None = None  # (by, reason)
        self.stop_recorded = False
        self.closed = False  # the run was ended by someone else
        self.lost = False  # another owner took the lease
        self.finishing = False
        self.failures: list[_Slot] = []
        self._dirty: set[StreamWriter] = set()
        self.batcher = Batcher(self.runs, self.run_id)
        self.run_writer = StreamWriter(
            self.runs,
            self.run_id,
            None,
            dialect,
            requested,
            prior=prior,
            batcher=self.batcher,
            on_dirty=self._mark_dirty,
            on_closed=self._on_closed,
            log=self.log,
        )
        self.slots: dict[str, _Slot] = {}
        for c in containers:
            if folded:
                writer = self.run_writer
            else:
                assert dialect.containers is not None
                writer = StreamWriter(
                    self.runs,
                    self.run_id,
                    c.name,
                    dialect.containers,
                    ev.Requested(
                        dialect=dialect.name,
                        operation=requested.operation,
                        name=c.name,
                        mode=requested.mode,
                        original_run_id=requested.original_run_id,
                        root_run_id=requested.root_run_id,
                        job_version=requested.job_version,
                    ),
                    batcher=self.batcher,
                    on_dirty=self._mark_dirty,
                    on_closed=self._on_closed,
                    log=self.log,
                )
            slot = self.slots[c.name] = _Slot(c, writer, self.log.bind(container=c.name))
            slot.cached = cached.get(c.name)

    # -- the run ------------------------------------------------------------------------------

    async def drive(self) -> None:
        """Run every container, then end the run. Cancelling this ends the run's active streams
        with ``InfrastructureFailed(reason="engine_stopped")`` (shielded, bounded) first."""
        if self.driving:
            await self.done.wait()
            return
        self.driving = True
        self.log.info("run started", containers=len(self.slots))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease)
                tg.start_soon(self._watch)
                tg.start_soon(self._flush_periodically)
                if not self.folded and self.stopping is None:
                    await self.run_writer.write(
                        [*START_SEQUENCE[:1], _assigned(self.settings.adapter), *START_SEQUENCE[2:]]
                    )
                async with anyio.create_task_group() as work:
                    for slot in self.slots.values():
                        work.start_soon(self._container, slot)
                if not (self.closed or self.lost):
                    self.finishing = True
                    await self._finish()
                tg.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_TIMEOUT):
                await self._end_all("engine_stopped")
            raise
        except Exception:
            self.log.exception("run crashed")
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_TIMEOUT):
                await self._end_all("engine_error")
        finally:
            with anyio.CancelScope(shield=True):
                if not self.lost:
                    try:
                        await self.runs.store.release_lease(self.run_id, self.settings.owner)
                    except Exception:
                        self.log.warning("lease not released", exc_info=True)
                self.done.set()
        self.log.info("run ended", state=self.run_writer.state, closed=self.closed, lost=self.lost)

    async def stop(self, by: str = "user", reason: str = "user", *, recorded: bool = False) -> None:
        """Abort: cancel every container's work and end all streams with the stop sequence.
        ``recorded``: someone else already recorded the ``StopRequested`` on the run stream."""
        if self.stopping is not None or self.closed or self.lost:
            return
        self.stopping = (by, reason)
        self.log.info("stop requested", by=by, reason=reason)
        for slot in self.slots.values():
            slot.scope.cancel()
        if recorded:
            await self.run_writer.refresh()  # our fold has not seen the foreign request
        if not self.folded:
            facts = stop_facts(self.dialect, self.run_writer.state, reason=reason, by=by)[:-1]
            if recorded:
                facts = [f for f in facts if not isinstance(f, ev.StopRequested)]
            self.stop_recorded = await self.run_writer.write(facts)

    async def _finish(self) -> None:
        d, writer = self.dialect, self.run_writer
        if self.folded or writer.terminal:
            return  # the one container already wrote the run's ending
        facts: list[ev.Fact]
        if self.stopping is not None:
            by, reason = self.stopping
            facts = self._rest_of_stop(d, writer.state, reason, by)
        else:  # the aggregation policy, over the containers in the order they ended
            ended = [*self.failures, *(s for s in self.slots.values() if s not in self.failures)]
            decided = verdict(d, [(s.spec.name, s.writer.acc) for s in ended])
            deciding = self.slots[decided.container].writer.acc if decided.container else None
            facts = run_ending(d, writer.state, decided, deciding)
        await writer.write(facts)

    def _rest_of_stop(self, d: Dialect, state: str, reason: str, by: str) -> list[ev.Fact]:
        full = stop_facts(d, state, reason=reason, by=by)
        if not self.stop_recorded:
            return full
        trimmed = [f for f in full if not isinstance(f, ev.StopRequested | ev.StoppingStarted)]
        for fact in trimmed:
            nxt = accepted(d, state, fact)
            if nxt is None:
                return full
            state = nxt
        return trimmed if d.table.outcome[state] is not None else full

    async def _end_all(self, reason: str) -> None:
        """End whatever is still active with ``InfrastructureFailed(reason)``."""
        if self.closed or self.lost:
            return
        fact = ev.InfrastructureFailed(reason=reason)
        try:
            if not self.folded:
                for slot in self.slots.values():
                    if not slot.writer.terminal:
                        await slot.writer.write([fact])
            if not self.run_writer.terminal:
                await self.run_writer.write([fact])
        except LifecycleError:  # our folds and the store disagree: end it from the store
            await end_run(self.runs, self.run_id, reason)

    # -- background duties --------------------------------------------------------------------

    def _cancel_all(self) -> None:
        for slot in self.slots.values():
            slot.scope.cancel()

    def _on_closed(self, writer: StreamWriter) -> None:
        """A stream was ended under us (``runs.abort`` from elsewhere, or a foreign fact)."""
        if writer is self.run_writer:
            if not self.closed:
                self.log.info("run ended by someone else", state=writer.state)
            self.closed = True
            self._cancel_all()
        else:
            for slot in self.slots.values():
                if slot.writer is writer:
                    slot.scope.cancel()

    async def _keep_lease(self) -> None:
        store, ttl = self.runs.store, self.settings.lease.ttl
        while True:
            await anyio.sleep(self.settings.lease.renew_every)
            try:
                ok = await store.acquire_lease(self.run_id, self.settings.owner, ttl)
            except Exception:
                self.log.warning("lease not renewed", exc_info=True)
                continue
            if not ok:
                self.log.error("lease lost: another engine ended or took this run")
                self.lost = True
                self._cancel_all()
                return

    async def _watch(self) -> None:
        """Notice a stop requested, or an ending written, by someone else."""
        acc = StreamFold(self.dialect, run_stream(self.run_id))
        position = 0
        while True:
            await anyio.sleep(self.settings.watch_interval)
            for record in await self.runs.store.read([acc.stream], after=position):
                position = record.position
                acc.apply(record.event, record.recorded_at, record.position)
                fact = record.event
                if isinstance(fact, ev.StopRequested) and self.stopping is None:
                    await self.stop(fact.by or "user", "user", recorded=True)
            if acc.outcome is not None and not self.finishing and not self.closed:
                self.log.info("run ended by someone else", state=acc.state)
                self.closed = True
                self._cancel_all()

    def _mark_dirty(self, writer: StreamWriter) -> None:
        self._dirty.add(writer)

    async def _flush_periodically(self) -> None:
        while True:
            await anyio.sleep(self.settings.flush_interval)
            dirty, self._dirty = self._dirty, set()
            for writer in dirty:
                await writer.flush()

    # -- one container ------------------------------------------------------------------------

    async def _container(self, slot: _Slot) -> None:
        try:
            await self._run_container(slot)
        except Exception as exc:  # a bug (ours or the adapter's): end this container, go on
            slot.log.exception("container crashed")
            if not (slot.writer.terminal or slot.writer.closed or self.closed or self.lost):
                await slot.writer.write(
                    [
                        _system_log(f"engine error: {exc!r}", "error"),
                        ev.InfrastructureFailed(reason="engine_error"),
                    ]
                )
        finally:
            slot.outcome = slot.writer.acc.outcome
            if slot.outcome == "failed":
                self.failures.append(slot)
            slot.done.set()
            slot.log.debug("container ended", state=slot.writer.state, fact=_name(slot.ending))

    async def _run_container(self, slot: _Slot) -> None:
        finished: Finished | None = None
        with slot.scope:
            if slot.cached is not None:
                result, source = slot.cached
                facts: list[ev.Fact] = [*START_SEQUENCE[:1], _assigned(self.settings.adapter)]
                facts += [*START_SEQUENCE[2:], *([result] if result else [])]
                facts.append(ev.ExecutionSucceeded(cached_from=source))
                slot.result = result
                slot.ending = facts[-1]
                await slot.writer.write(facts)
                return
            for dep in slot.requires:
                await self.slots[dep].done.wait()
            failed = [d for d in slot.requires if self.slots[d].outcome != "succeeded"]
            if failed:
                slot.upstream_failed = failed[0]
            else:
                finished = await self._run_slot(slot)
        if slot.writer.closed or self.closed or self.lost:
            return
        facts = await self._ending(slot, finished)
        if facts:
            slot.ending = facts[-1]
            await slot.writer.write(facts)

    async def _run_slot(self, slot: _Slot) -> Finished | None:
        sem = self.settings.slots
        node = _assigned(self.settings.adapter)
        try:
            sem.acquire_nowait()
        except anyio.WouldBlock:
            slot.writer.defer(START_SEQUENCE[:1])  # visible within flush_interval
            await sem.acquire()
            prep: list[ev.Fact] = [node, ev.PreparationStarted()]
        else:
            prep = [ev.ResourcesRequested(), node, ev.PreparationStarted()]
        try:
            slot.writer.defer(prep)  # goes with ExecutionStarted, or flushed shortly
            spec = await self._spec(slot)
            if isinstance(spec, Finished):
                return spec
            return await self._execute(slot, spec)
        finally:
            sem.release()

    async def _execute(self, slot: _Slot, spec: ContainerSpec) -> Finished | None:
        now = anyio.current_time()
        start_timeout = self.settings.start_timeout
        start_deadline = now + start_timeout if start_timeout is not None else math.inf
        slot.deadline = now + slot.spec.timeout if slot.spec.timeout is not None else math.inf
        with anyio.CancelScope(deadline=min(start_deadline, slot.deadline)) as scope:
            slot.exec_scope = scope

            async def report(fact: ev.Fact) -> None:
                await self._report(slot, fact)

            try:
                return await self.settings.adapter.execute(spec, report)
            except Exception as exc:  # the adapter's bug, not the user's code
                slot.log.exception("adapter failed")
                await slot.writer.log(
                    _system_log("".join(traceback.format_exception(exc)), "error")
                )
                return Finished(ev.InfrastructureFailed(reason="adapter_error"))
        # only our own deadline lands here: an abort cancels the outer scope
        if not slot.started and start_deadline <= slot.deadline:
            slot.timed_out = "start_timeout"
        else:
            slot.timed_out = "timeout"
        return None

    async def _report(self, slot: _Slot, fact: ev.Fact) -> None:
        kind = type(fact)
        if kind is ev.LogRecorded:
            await slot.writer.log(fact)  # type: ignore[arg-type]
        elif kind is ev.ExecutionStarted:
            if slot.started:
                return
            slot.started = True
            if slot.exec_scope is not None:
                slot.exec_scope.deadline = slot.deadline
            await slot.writer.write([fact])
        elif kind in REPORTABLE:
            facts = [fact] if slot.started else [ev.ExecutionStarted(), fact]
            slot.started = True
            await slot.writer.write(facts)
        else:
            raise TypeError(
                f"an adapter reports {', '.join(t.__name__ for t in REPORTABLE)}; it returns "
                f"its ending as Finished and the engine writes the rest, not {kind.__name__}"
            )

    async def _spec(self, slot: _Slot) -> ContainerSpec | Finished:
        """The spec with its ``Upstream`` placeholders resolved (or why that failed)."""
        c = slot.spec
        values: dict[Upstream, Any] = {}
        for p in placeholders((c.args, c.kwargs)) if c.args or c.kwargs else ():
            if p in values:
                continue
            try:
                values[p] = await self._upstream_value(p)
            except (LifecycleError, KeyError) as exc:
                return Finished(
                    ev.ExecutionFailed(error=f"cannot resolve {p!r}: {exc}", exit_code=None)
                )
        args, kwargs = c.args, c.kwargs
        if values:
            args = resolve_args(tuple(c.args), values.__getitem__)
            kwargs = resolve_args(dict(c.kwargs), values.__getitem__)
        return ContainerSpec(
            run_id=self.run_id,
            name=c.name,
            command=tuple(c.command) if c.command is not None else None,  # type: ignore[arg-type]
            call=c.call,
            args=tuple(args),
            kwargs=dict(kwargs),
            env=dict(c.env),
            memory_limit=c.memory_limit,
        )

    async def _upstream_value(self, p: Upstream) -> Any:
        if p.run_id is not None:
            return await load_result(self.runs, p.run_id, p.name)
        upstream = self.slots[p.name]
        if upstream.encoded is not None:
            return decode_result(*upstream.encoded)
        fact = upstream.result
        if fact is None:
            return None
        data = await self.runs.store.get_blob(fact.key)
        if data is None or (fact.sha256 and hashlib.sha256(data).hexdigest() != fact.sha256):
            raise StoreError(f"the result of {p.name!r} ({fact.key}) is missing or damaged")
        return decode_result(fact.codec, data)

    async def _ending(self, slot: _Slot, finished: Finished | None) -> list[ev.Fact]:
        if finished is not None:
            facts: list[ev.Fact] = [] if slot.started else [ev.ExecutionStarted()]
            fact: ev.Fact = finished.fact
            if isinstance(fact, ev.ExecutionSucceeded) and finished.value is not None:
                try:
                    facts.append(await self._store(slot, finished.value))
                except TypeError as exc:
                    facts.append(_system_log(str(exc), "error"))
                    fact = ev.ExecutionFailed(error=f"the result could not be stored: {exc}")
            facts.append(fact)
            return facts
        d = slot.writer.acc.dialect
        if slot.upstream_failed is not None:
            note = _system_log(f"not started: {slot.upstream_failed!r} did not succeed", "info")
            return [note, *stop_facts(d, slot.writer.state, reason="upstream_failed", by="engine")]
        if self.stopping is not None:
            by, reason = self.stopping
            if slot.writer is self.run_writer:  # folded: the run's own stop
                return self._rest_of_stop(d, slot.writer.state, reason, by)
            return stop_facts(d, slot.writer.state, reason="user", by=by)
        if slot.timed_out is not None:
            return [ev.InfrastructureFailed(reason=slot.timed_out)]
        return []

    async def _store(self, slot: _Slot, value: Any) -> ev.ResultStored:
        codec, data = encode_result(value)
        key = result_key(self.run_id, None if self.folded else slot.spec.name)
        await self.runs.store.put_blob(key, data)
        if len(data) <= KEEP_IN_MEMORY:
            slot.encoded = (codec, data)
        slot.result = ev.ResultStored(
            key=key, codec=codec, size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        return slot.result


def _assigned(adapter: Adapter) -> ev.ResourcesAssigned:
    return ev.ResourcesAssigned(node=adapter.name or type(adapter).__name__)


def _system_log(text: str, level: str) -> ev.LogRecorded:
    return ev.LogRecorded(level=level, stream="system", text=text)


def _name(fact: ev.Fact | None) -> str | None:
    return None if fact is None else type(fact).__name__
