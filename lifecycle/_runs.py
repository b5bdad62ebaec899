"""The run service: create runs, record facts, read views — validated against the dialect.

:class:`AsyncRuns` is the service; :class:`~lifecycle.Runs` (``_blocking.py``) is the same
methods, blocking, for scripts and notebooks. The embedding API — ``advance`` (phases, from
``_phases.py``), ``advance_many``, ``accepts`` and ``finish`` (the policy, from ``_policy.py``)
— is here too.

``record`` validates every fact against the stream's dialect before anything is written, then
appends with the stream's expected version, so two writers (tasks or processes) cannot both
decide from the same state: the loser re-reads and is validated again. Rules beyond the dialect:

- ``Requested`` is written only by ``create`` (and ``rerun``/``resume``), never by ``record``.
- A run becomes terminal only when all its containers are; the append checks their versions too.
- Terminal is final: a terminal stream accepts nothing (``StreamClosed``).
"""

from __future__ import annotations

import builtins
import datetime as _dt
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

import anyio
import anyio.from_thread

from . import events as ev
from ._canonical import START_SEQUENCE, accepted, stop_facts
from ._dialects import Dialect
from ._dialects import dialect as find_dialect
from ._errors import (
    ConcurrencyError,
    IdempotencyConflict,
    InvalidTransition,
    PolicyViolation,
    StreamClosed,
    UnknownContainer,
    UnknownRun,
)
from ._leases import reconcile as reconcile_leases
from ._phases import Phase, plan
from ._policy import finish_items, in_order, verdict
from ._stores import RunStore, RunSummary, Write, open_store
from ._views import RunFold, RunView, StreamFold, container_stream, run_stream

__all__ = ["AsyncRuns", "Move", "summary_of"]


_RETRIES = 5
_CACHE_LIMIT = 4096


def summary_of(view: RunView) -> RunSummary:
    """The read-model row of a view."""
    return RunSummary(
        run_id=view.run_id,
        dialect=view.dialect,
        operation=view.operation,
        name=view.name,
        state=view.state,
        outcome=view.outcome,
        terminal=view.terminal,
        warning=view.warning,
        created_at=view.created_at,
        started_at=view.started_at,
        ended_at=view.ended_at,
        original_run_id=view.original_run_id,
        root_run_id=view.root_run_id,
        job_version=view.job_version,
        reason=view.reason,
    )


def _row_moves(before: StreamFold, after: StreamFold) -> bool:
    """Whether facts that took a run stream from ``before`` to ``after`` change the run's
    read-model row. The row is made of the ``Requested`` fields (fixed), the state (with the
    outcome and ``ended_at``, which change only with it), ``started_at``, the reason, and the
    Warning indicator — which is false until the run ends, so it too changes only with the
    state. ``started_at`` and the reason can move without a state change (a Qualytics promote
    starts in Running and tolerates ``ExecutionStarted`` there), so they are compared too."""
    return (
        after.state is not before.state
        or after.started_at != before.started_at
        or after.reason != before.reason
    )


def _added(records: Iterable[ev.Recorded]) -> builtins.list[str]:
    """Names of the containers that ``ContainerAdded`` facts among ``records`` add."""
    return [r.event.name for r in records if isinstance(r.event, ev.ContainerAdded)]


def _added_container(
    run: RunFold,
    trial: StreamFold,
    container: str | None,
    fact: ev.ContainerAdded,
    *,
    trials: dict[str | None, StreamFold],
    now: _dt.datetime,
) -> StreamFold:
    """Check a ``ContainerAdded`` and fold the new container's ``Requested`` (issue 13).

    Any non-empty name is accepted; its stream is ``run-{id}/{name}`` verbatim (a stream name is
    split at its *first* ``/``, so ``/``, ``(`` and spaces in a container name are safe)."""
    req = run.run.requested

    def refuse(hint: str) -> InvalidTransition:
        return InvalidTransition(
            dialect=trial.dialect.name,
            state=trial.state,
            fact="ContainerAdded",
            stream=trial.stream,
            version=trial.version,
            hint=hint,
        )

    if container is not None:
        raise refuse("ContainerAdded is a run-level fact: record it with container=None.")
    if (
        req is None
        or run.dialect.containers is None
        or not run.dialect.has_containers(req.operation)
    ):
        operation = req.operation if req else "?"
        raise refuse(f"{run.dialect.name} {operation} runs have no containers.")
    if not isinstance(fact.name, str) or not fact.name:
        raise refuse("A container name must be a non-empty string.")
    if fact.name in run.containers or fact.name in trials:
        raise refuse(f"Run {run.run_id} already has a container {fact.name!r}.")
    child = StreamFold(run.dialect.containers, container_stream(run.run_id, fact.name))
    child.apply(
        ev.Requested(
            dialect=req.dialect,
            operation=req.operation,
            name=fact.name,
            mode=req.mode,
            original_run_id=req.original_run_id,
            root_run_id=req.root_run_id,
            job_version=req.job_version,
        ),
        now,
    )
    return child


def _check_policy(
    run: RunFold, trial: StreamFold, streams: dict[str | None, StreamFold], *, fact: str
) -> None:
    """Refuse a run-level success that the aggregation policy contradicts (issue 13): the engine
    ends runs by the policy, and so must every other writer."""
    ended = in_order((name, acc) for name, acc in streams.items() if name is not None)
    decided = verdict(run.dialect, ended)
    if decided.outcome == "succeeded" or decided.container is None:
        return
    acc = streams[decided.container]
    raise PolicyViolation(
        container=decided.container,
        expected=decided.outcome,
        dialect=trial.dialect.name,
        state=run.run.state,
        fact=fact,
        stream=trial.stream,
        version=run.run.version,
        hint=f"Container {decided.container!r} ended {acc.state}: under {run.dialect.name}'s "
        f"aggregation policy ({run.dialect.aggregation!r}) the run ends {decided.outcome}. "
        "Record that ending, or let finish() derive it.",
    )


Move: TypeAlias = (
    tuple[str | None, "Phase | str | ev.Fact"] | tuple[str | None, "Phase | str", Mapping[str, Any]]
)
"""One move of :meth:`AsyncRuns.advance_many`: ``(container, phase[, details])`` or
``(container, fact)``; ``container`` ``None`` is the run itself."""


class AsyncRuns:
    """Runs on a store: ``async with AsyncRuns("sqlite:///runs.db") as runs: ...``.

    ``store`` is a URL (``memory://``, ``sqlite:///path``) or a ``RunStore``; ``options`` go to
    the store (e.g. ``durability="durable"``). ``poll_interval`` bounds how long ``follow`` waits
    before looking again (other processes' appends are seen at least that often).
    """

    def __init__(
        self, store: str | RunStore = "memory://", *, poll_interval: float = 0.5, **options: Any
    ) -> None:
        self.store: RunStore = open_store(store, **options)
        self.poll_interval = poll_interval
        self._cache: dict[int, RunFold] = {}
        self._locks: dict[int, anyio.Lock] = {}

    async def __aenter__(self) -> Self:
        await self.store.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.store.aclose()

    # -- reading ----------------------------------------------------------------------------------

    async def _load(self, run_id: int, *, fresh: bool = True) -> RunFold:
        """The run's open fold: from the cache, caught up with the store when ``fresh``."""
        run = self._cache.get(run_id)
        if run is None:
            head = await self.store.read([run_stream(run_id)])
            if not head or not isinstance(head[0].event, ev.Requested):
                raise UnknownRun(f"no run {run_id} in {self.store.url}")
            requested = head[0].event
            run = RunFold(find_dialect(requested.dialect), run_id)
            names = [*requested.containers, *_added(head)]
            streams = [container_stream(run_id, c) for c in names]
            tail = await self.store.read(streams) if streams else []
            run.catch_up(head)
            run.catch_up(tail)
            # the two reads are not one snapshot: a later write to the run stream may sit below
            # the containers' last position, so only the run stream's read counts as seen
            run.seen = head[-1].position
            if len(self._cache) >= _CACHE_LIMIT:
                self._evict()
            self._cache[run_id] = run
        elif fresh and not run.terminal:
            records = await self.store.read(self._streams(run), after=run.seen)
            new = [c for c in _added(records) if c not in run.containers]
            run.catch_up(records)
            if new:  # added by another writer: their streams from the start
                run.catch_up(await self.store.read([container_stream(run_id, c) for c in new]))
        return run

    def _evict(self) -> None:
        for run_id in [r for r, run in self._cache.items() if run.terminal][: _CACHE_LIMIT // 2]:
            del self._cache[run_id]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()

    @staticmethod
    def _streams(run: RunFold) -> list[str]:
        return [run_stream(run.run_id), *(acc.stream for acc in run.containers.values())]

    @staticmethod
    def _versions(run: RunFold) -> int:
        """Facts folded so far across the run's streams: changes whenever anything is caught up."""
        return run.run.version + sum(c.version for c in run.containers.values())

    async def get(self, run_id: int) -> RunView:
        """The run's current view, containers included. Raises ``UnknownRun``."""
        # Under the run's lock (added for the engine, issue 4): a catch-up read that overlaps a
        # record() in flight on a store with real awaits (SQLite) would fold the new facts twice.
        async with self._lock(run_id):
            return (await self._load(run_id)).view()

    async def history(self, run_id: int) -> list[ev.Recorded]:
        """Every record of the run and its containers, in position order."""
        run = await self._load(run_id, fresh=False)
        return await self.store.read(self._streams(run))

    async def list(
        self,
        *,
        name: str | None = None,
        state: str | None = None,
        dialect: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[RunSummary]:
        """Runs from the read model, newest first, filtered by any of the arguments.
        ``start_time``/``end_time`` bound the creation time; either may be omitted."""
        return await self.store.list_runs(
            name=name,
            state=state,
            dialect=dialect,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
        )

    async def follow(self, run_id: int) -> AsyncGenerator[ev.Recorded]:
        """Every record of the run, then new ones as they are committed (logs included), until
        the run is terminal. Other processes' appends are seen within ``poll_interval``."""
        first = await self._load(run_id, fresh=False)
        streams = self._streams(first)
        seen = RunFold(first.dialect, run_id)
        position = 0  # the last record of this run read
        head = 0  # the store's head when last looked at: every record up to it has been read
        while True:
            for record in await self.store.read(streams, after=position):
                seen.apply(record)
                position = record.position
                yield record
            if seen.terminal:
                return
            # wait for the *store's* head to pass what has been read, not for this run's last
            # record: once another run appends, the head is past that record for good, and
            # waiting on it would return at once, forever (a busy loop that never yields)
            with anyio.move_on_after(self.poll_interval):
                head = await self.store.wait(max(head, position))

    # -- writing ----------------------------------------------------------------------------------

    def _lock(self, run_id: int) -> anyio.Lock:
        lock = self._locks.get(run_id)
        if lock is None:
            lock = self._locks[run_id] = anyio.Lock()
        return lock

    async def create(
        self,
        dialect: str | Dialect,
        *,
        operation: str | None = None,
        containers: Sequence[str] = (),
        name: str = "",
        params: dict[str, Any] | None = None,
        build: bool = False,
        job_version: int | None = None,
        mode: Literal["new", "rerun", "resume"] = "new",
        original_run_id: int | None = None,
        root_run_id: int | None = None,
        then: Sequence[ev.Fact] = (),
        along: tuple[int, Callable[[int], Sequence[ev.Fact]]] | None = None,
        key: str | None = None,
    ) -> RunView:
        """Start a run: ``Requested`` on the run stream and on one stream per container, in one
        atomic append. Raises ``UnknownDialect``, or ``InvalidTransition`` for an operation the
        dialect does not have or containers it does not allow.

        Three options make the start of a run part of a larger decision (the scheduler's arming,
        ``lifecycle._workflow._scheduler``): ``then`` — run-level facts recorded after
        ``Requested`` (e.g. ``ScheduleArmed``); ``along`` — ``(run_id, make)``: the run-level
        facts ``make(new_run_id)`` returns, for another run, checked as ``record`` checks them
        (its version included: if that run moved meanwhile, ``ConcurrencyError`` and nothing
        is written), all in the same append; ``key`` — event ids derived from it instead of
        fresh ones, so the same decision made twice is written once: a create retried with the
        same key returns the run the first one created."""
        d = find_dialect(dialect)
        if operation is None:
            operation = "run" if d.operations is None else ""
            if not operation:
                raise InvalidTransition(
                    dialect=d.name,
                    state="[*]",
                    fact="Requested",
                    hint=f"Pass operation=, one of: {', '.join(d.operations or ())}.",
                )
        names = list(containers)
        if names and not d.has_containers(operation):
            raise InvalidTransition(
                dialect=d.name,
                state="[*]",
                fact="Requested",
                hint=f"{d.name} {operation} runs have no containers; all work folds into the run.",
            )
        bad = [c for c in names if not isinstance(c, str) or not c]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"container names must be unique, non-empty strings: {names}")
        requested = ev.Requested(
            dialect=d.name,
            operation=operation,
            name=name,
            containers=tuple(names),
            params=dict(params or {}),
            mode=mode,
            original_run_id=original_run_id,
            root_run_id=root_run_id,
            job_version=job_version,
            build=build,
        )
        run_id = await self.store.next_run_id()
        now = _dt.datetime.now(_dt.UTC)
        run = RunFold(d, run_id)
        run.run.apply(requested, now)
        for fact in then:
            if isinstance(fact, ev.Requested):
                raise ValueError("then= takes the facts after Requested")
            run.run.apply(fact, now)
        head = (requested, *then)
        ids = (lambda part: f"{key}:{part}") if key is not None else None
        writes = [
            Write(
                stream=run_stream(run_id),
                events=head,
                expected_version=0,
                event_ids=None if ids is None else tuple(ids(f"run:{i}") for i in range(len(head))),
            )
        ]
        for c in names:
            fact = ev.Requested(
                dialect=d.name,
                operation=operation,
                name=c,
                mode=mode,
                original_run_id=original_run_id,
                root_run_id=root_run_id,
                job_version=job_version,
            )
            run.stream(c).apply(fact, now)
            writes.append(
                Write(
                    stream=container_stream(run_id, c),
                    events=(fact,),
                    expected_version=0,
                    event_ids=None if ids is None else (ids(f"container:{c}"),),
                )
            )
        summaries = [summary_of(run.view())]
        other: RunFold | None = None
        if along is not None:
            other = await self._load(along[0])
            facts = list(along[1](run_id))
            other_ids = tuple(
                ids(f"along:{i}") if ids is not None else ev.new_event_id()
                for i in range(len(facts))
            )
            try:
                more, rows, _ = self._prepare(other, [(None, facts)], other_ids, now)
            except (InvalidTransition, ConcurrencyError):
                # the other run moved on: refused, unless this create was made before
                made = None if key is None else await self._made_with(key, other, len(writes))
                if made is None:
                    raise
                return made
            writes += more
            summaries += rows
        try:
            records = await self.store.append(writes, summaries=summaries, at=now)
        finally:
            if other is not None:
                self._cache.pop(other.run_id, None)  # read it afresh next time
        if records and records[0].stream != writes[0].stream:
            # ``key`` was used before: the store returned that append's records and wrote
            # nothing. The run it created is the answer (and this run id stays unused).
            return await self.get(int(records[0].stream.partition("-")[2]))
        for record in records:  # positions only: the facts are already folded
            if record.stream == writes[0].stream:
                run.run.position = record.position
            elif record.stream.startswith(f"{writes[0].stream}/"):
                run.stream(record.stream.partition("/")[2]).position = record.position
        self._cache[run_id] = run
        return run.view()

    async def _made_with(self, key: str, other: RunFold, before: int) -> RunView | None:
        """The run that ``create(key=key, along=...)`` made before, found from the ``along``
        fact it left on ``other``: one append wrote the new run's stream and its containers'
        (``before`` writes), then that fact, at consecutive positions."""
        mark = f"{key}:along:0"
        found = [r for r in await self.store.read([run_stream(other.run_id)]) if r.event_id == mark]
        if not found:
            return None
        for record in await self.store.read_all(
            after=max(0, found[0].position - before - 64), limit=before + 64
        ):
            if record.event_id == f"{key}:run:0" and record.stream.startswith("run-"):
                return await self.get(int(record.stream.partition("-")[2]))
        return None

    async def record(
        self,
        run_id: int,
        facts: ev.Fact | Iterable[ev.Fact],
        *,
        container: str | None = None,
        event_ids: Sequence[str] | None = None,
    ) -> builtins.list[ev.Recorded]:
        """Validate and append one fact or an atomic batch to the run (or one container).

        Raises ``UnknownRun``, ``InvalidTransition`` / ``StreamClosed`` (nothing is written),
        ``IdempotencyConflict``. A retry with the same ``event_ids`` returns the original records.
        """
        batch = [facts] if isinstance(facts, ev.Fact) else list(facts)
        return await self.record_many(run_id, [(container, batch)], event_ids=event_ids)

    async def record_many(
        self,
        run_id: int,
        items: Sequence[tuple[str | None, Sequence[ev.Fact]]],
        *,
        event_ids: Sequence[str] | None = None,
    ) -> builtins.list[ev.Recorded]:
        """``record`` for several streams of one run — ``(container, facts)`` pairs, ``None``
        for the run stream — validated the same way and appended atomically, in one store
        round trip (how an engine driving many containers keeps up). ``event_ids``, if given,
        has one id per fact, in the order of ``items``."""
        pairs = [(c, list(f)) for c, f in items if f]
        count = sum(len(f) for _, f in pairs)
        if not count:
            return []
        ids = (
            tuple(event_ids)
            if event_ids is not None
            else tuple(ev.new_event_id() for _ in range(count))
        )
        if len(ids) != count:
            raise ValueError(f"{count} facts but {len(ids)} event ids")
        async with self._lock(run_id):
            for attempt in range(_RETRIES):
                run = await self._load(run_id, fresh=attempt > 0)
                try:
                    return await self._record(run, pairs, ids)
                except IdempotencyConflict:
                    raise
                except ConcurrencyError:
                    self._cache.pop(run_id, None)  # someone else wrote: re-read, decide again
                except InvalidTransition:
                    # decided from the cache: someone else may have moved the run on
                    versions = self._versions(run)
                    if attempt == 0 and self._versions(await self._load(run_id)) != versions:
                        continue
                    if attempt == 0 and event_ids is not None:
                        # maybe a retry of an append whose acknowledgement was lost
                        stored = await self._replayed(run, ids)
                        if stored is not None:
                            return stored
                    raise
            raise ConcurrencyError(f"run {run_id}: gave up after {_RETRIES} conflicting writes")

    # -- embedding: phases, accepts, finish (issue 13) ----------------------------------------

    async def advance(
        self, run_id: int, phase: Phase | str, *, container: str | None = None, **details: Any
    ) -> RunView:
        """Move the run (``container=None``) or one container to an orchestrator's ``phase``
        (``queued``, ``assigned``, ``started``, ``succeeded``, ``failed``, ``out_of_memory``,
        ``cancelled``, ``lost``), recording the canonical facts its dialect needs from the
        current state (``lifecycle._phases``). A phase already reached records nothing, so
        repeated hooks are harmless; ``queued`` from a running state is a retry (``Requeued``).
        ``details`` are the phase fact's fields (``reason``, ``error``, ``exit_code``,
        ``limit_bytes``, ``cached_from``, ``by``). Returns the view after it."""
        for attempt in range(2):
            run = await self._load(run_id, fresh=attempt > 0)
            if container is not None and container not in run.containers:
                raise UnknownContainer(
                    f"run {run_id} has no container {container!r}",
                    run_id=run_id,
                    container=container,
                )
            acc = run.stream(container)
            facts = plan(acc.dialect, acc.state, str(phase), stream=acc.stream, **details)
            if not facts:
                return run.view()
            try:
                await self.record_many(run_id, [(container, facts)])
            except (StreamClosed, PolicyViolation, UnknownContainer):
                raise
            except InvalidTransition:
                if attempt:
                    raise  # moved on by someone else between our read and our write: decide again
            else:
                return await self.get(run_id)
        raise AssertionError("unreachable")  # pragma: no cover

    async def advance_many(
        self,
        run_id: int,
        moves: Iterable[Move],
        *,
        skip_closed: bool = False,
    ) -> builtins.list[ev.Recorded]:
        """Many moves of one run in one atomic append (how an orchestrator's batched hooks keep
        up). A move is ``(container, phase)``, ``(container, phase, details)`` or
        ``(container, fact)`` — a fact is recorded as given (``ContainerAdded`` on the run, a
        log line); each phase is planned from the state the moves before it reach, as
        :meth:`advance` plans it. ``skip_closed``: a phase for a stream already terminal is
        skipped instead of raising ``StreamClosed`` (Dask forgets keys long after they ended).
        Any other refusal raises and writes nothing. Returns the records written, like
        :meth:`record_many` (a view of a run of 1,000 containers per batch would cost more
        than the batch)."""
        run = await self._load(run_id)
        req = run.run.requested
        operation = req.operation if req is not None else "run"
        states: dict[str | None, str] = {}
        items: builtins.list[tuple[str | None, builtins.list[ev.Fact]]] = []
        for move in moves:
            container, what = move[0], move[1]
            d = run.dialect if container is None else run.dialect.containers
            state = states.get(container)
            if state is None:
                if container is not None and container not in run.containers:
                    raise UnknownContainer(
                        f"run {run_id} has no container {container!r}",
                        run_id=run_id,
                        container=container,
                    )
                state = run.stream(container).state
            assert d is not None  # a container stream exists only where the dialect has them
            if isinstance(what, ev.Fact):
                facts: builtins.list[ev.Fact] = [what]
                if isinstance(what, ev.ContainerAdded) and run.dialect.containers is not None:
                    states[what.name] = run.dialect.containers.initial_state(operation)
            elif skip_closed and d.table.outcome[state] is not None:
                continue
            else:
                details = move[2] if len(move) > 2 else {}
                facts = plan(d, state, what, **details)
            for fact in facts:
                state = accepted(d, state, fact) or state
            states[container] = state
            if facts:
                items.append((container, facts))
        return await self.record_many(run_id, items) if items else []

    async def accepts(self, run_id: int, fact: ev.Fact, *, container: str | None = None) -> bool:
        """Whether ``record(run_id, fact, container=container)`` would be accepted now: the
        dialect's table, the run service's rules (containers, aggregation policy) — every
        check of an append, without writing. An invalid fact raises ``InvalidFact``."""
        ev.validate(fact)
        run = await self._load(run_id)
        try:
            self._prepare(run, [(container, [fact])], ("accepts",), _dt.datetime.now(_dt.UTC))
        except (InvalidTransition, UnknownContainer):
            return False
        return True

    async def finish(
        self,
        run_id: int,
        outcome: Literal["succeeded", "failed", "cancelled"] | None = None,
        *,
        reason: str = "finished",
        by: str = "orchestrator",
    ) -> RunView:
        """End a run whose orchestrator will report nothing more (Prefect fires no hook for a
        task it never starts): stop every container still active with ``reason``, and end the
        run with the outcome the dialect's aggregation policy derives from its containers — or
        ``outcome`` if given (a success the policy contradicts raises ``PolicyViolation``).
        One atomic append: nothing is half-written. A run already ended in ``outcome`` (or
        any, when not given) is returned as it is."""
        for attempt in range(2):
            run = await self._load(run_id, fresh=attempt > 0)
            if run.terminal:
                ended = run.dialect.table.outcome[run.run.state]
                if outcome is None or outcome == ended:
                    return run.view()
                raise StreamClosed(
                    dialect=run.dialect.name,
                    state=run.run.state,
                    fact=f"finish(outcome={outcome!r})",
                    stream=run.run.stream,
                    hint=f"The run already ended {ended}.",
                )
            items = finish_items(run, outcome, reason=reason, by=by)
            try:
                await self.record_many(run_id, items)
            except (StreamClosed, PolicyViolation):
                raise
            except (InvalidTransition, ConcurrencyError):
                if attempt:
                    raise
            else:
                return await self.get(run_id)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _replayed(
        self, run: RunFold, ids: tuple[str, ...]
    ) -> builtins.list[ev.Recorded] | None:
        records = {r.event_id: r for r in await self.store.read(self._streams(run))}
        found = [records.get(i) for i in ids]
        return found if all(found) else None  # type: ignore[return-value]

    async def _record(
        self,
        run: RunFold,
        items: Sequence[tuple[str | None, builtins.list[ev.Fact]]],
        ids: tuple[str, ...],
    ) -> builtins.list[ev.Recorded]:
        """Validate ``items`` on copies of the streams' folds, append, then install the copies.
        Nothing is changed unless the append succeeds."""
        now = _dt.datetime.now(_dt.UTC)
        writes, summaries, trials = self._prepare(run, items, ids, now)
        records = await self.store.append(writes, summaries=summaries, at=now)
        last = {r.stream: r for r in records}
        if any(last[t.stream].version != t.version for t in trials.values()):
            # an idempotent retry: the store returned the original records and wrote nothing,
            # so the trial folds (the batch applied again) are not the log: read it afresh
            self._cache.pop(run.run_id, None)
            return records
        for container, trial in trials.items():
            trial.position = last[trial.stream].position
            if container is None:
                run.run = trial
            else:
                run.containers[container] = trial
        return records

    @staticmethod
    def _prepare(
        run: RunFold,
        items: Sequence[tuple[str | None, builtins.list[ev.Fact]]],
        ids: tuple[str, ...],
        now: _dt.datetime,
    ) -> tuple[builtins.list[Write], builtins.list[RunSummary], dict[str | None, StreamFold]]:
        """Every check of an append, on copies of the streams' folds (``run`` is not changed):
        the writes, the read-model rows and the trial folds. Raises what the append would."""
        trials: dict[str | None, StreamFold] = {}
        events: dict[str | None, builtins.list[ev.Fact]] = {}
        # event ids follow the facts in the order given; writes group them per stream
        stream_ids: dict[str | None, builtins.list[str]] = {}
        given = iter(ids)
        for container, facts in items:
            if (
                container is not None
                and container not in trials
                and container not in run.containers
            ):
                raise UnknownContainer(
                    f"run {run.run_id} has no container {container!r} "
                    f"(containers: {', '.join(run.containers) or 'none'}); declare it in "
                    "create(containers=...) or record ContainerAdded on the run first",
                    run_id=run.run_id,
                    container=container,
                )
            trial = trials.get(container)
            if trial is None:
                trial = trials[container] = StreamFold.copy(run.stream(container))
                events[container], stream_ids[container] = [], []
            for fact in facts:
                fact_id = next(given)
                if isinstance(fact, ev.Requested):
                    raise InvalidTransition(
                        dialect=trial.dialect.name,
                        state=trial.state,
                        fact="Requested",
                        stream=trial.stream,
                        version=trial.version,
                        hint="Requested is written by create(), rerun() and resume() only.",
                    )
                if isinstance(fact, ev.ContainerAdded):
                    child = _added_container(run, trial, container, fact, trials=trials, now=now)
                trial.apply(fact, now)
                events[container].append(fact)
                stream_ids[container].append(fact_id)
                if isinstance(fact, ev.ContainerAdded):
                    trials[fact.name] = child
                    events[fact.name] = [child.requested]  # type: ignore[list-item]
                    stream_ids[fact.name] = [f"{fact_id}:requested"]
        writes = [
            Write(
                stream=trial.stream,
                events=tuple(events[c]),
                expected_version=(
                    run.run.version
                    if c is None
                    else run.containers[c].version
                    if c in run.containers
                    else 0
                ),
                event_ids=tuple(stream_ids[c]),
            )
            for c, trial in trials.items()
        ]
        summaries: builtins.list[RunSummary] = []
        run_trial = trials.get(None)
        if run_trial is not None and _row_moves(run.run, run_trial):
            if run_trial.state is not run.run.state and run_trial.outcome is not None:
                streams: dict[str | None, StreamFold] = dict(run.containers.items())
                streams.update(trials)
                active = [
                    name
                    for name, acc in streams.items()
                    if name is not None and acc.outcome is None
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
                if run_trial.outcome == "succeeded":
                    _check_policy(run, run_trial, streams, fact=type(events[None][-1]).__name__)
                writes += [  # they must not move while the run ends
                    Write(stream=acc.stream, expected_version=acc.version)
                    for name, acc in run.containers.items()
                    if name not in trials
                ]
            clone = RunFold(run.dialect, run.run_id)
            clone.run = run_trial
            clone.containers = {**run.containers, **{c: t for c, t in trials.items() if c}}
            summaries.append(summary_of(clone.view()))
        return writes, summaries, trials

    @staticmethod
    def _with(run: RunFold, container: str | None, acc: StreamFold) -> RunFold:
        clone = RunFold(run.dialect, run.run_id)
        clone.seen = run.seen
        clone.run = acc if container is None else run.run
        clone.containers = dict(run.containers)
        if container is not None:
            clone.containers[container] = acc
        return clone

    async def reconcile(self) -> builtins.list[RunView]:
        """End every active run whose engine died — its lease expired — with
        ``InfrastructureFailed(reason="engine_lost")`` on the run and its active containers
        (Domino: Error), after killing what that engine left running on this machine. Runs no
        engine ever leased are left alone. Returns the runs ended. (``lifecycle._leases``.)"""
        return await reconcile_leases(self)

    async def abort(self, run_id: int, *, by: str = "user", reason: str = "user") -> RunView:
        """Stop the run and every active container, in one atomic append:
        ``StopRequested`` → ``StoppingStarted`` → ``Stopped`` where each dialect accepts them
        (Domino: StopRequested → Stopping → Stopped; Qualytics: Aborted). Raises ``StreamClosed``
        if the run is already terminal."""
        async with self._lock(run_id):
            for _ in range(_RETRIES):
                run = await self._load(run_id)
                if run.terminal:
                    raise StreamClosed(
                        dialect=run.dialect.name,
                        state=run.run.state,
                        fact="StopRequested",
                        stream=run.run.stream,
                        version=run.run.version,
                        hint=f"Run {run_id} has already ended; there is nothing to abort.",
                    )
                now = _dt.datetime.now(_dt.UTC)
                writes: builtins.list[Write] = []
                trial = self._with(run, None, StreamFold.copy(run.run))
                for name, acc in run.containers.items():
                    facts = stop_facts(acc.dialect, acc.state, reason="user", by=by)
                    if facts:
                        trial.containers[name] = self._applied(acc, facts, now)
                    writes.append(
                        Write(stream=acc.stream, events=tuple(facts), expected_version=acc.version)
                    )
                facts = stop_facts(run.dialect, run.run.state, reason=reason, by=by)
                trial.run = self._applied(run.run, facts, now)
                writes.insert(
                    0,
                    Write(
                        stream=run.run.stream, events=tuple(facts), expected_version=run.run.version
                    ),
                )
                try:
                    records = await self.store.append(
                        writes, summaries=[summary_of(trial.view())], at=now
                    )
                except ConcurrencyError:
                    self._cache.pop(run_id, None)
                    continue
                for record in records:
                    _, _, c = record.stream.partition("/")
                    (trial.containers[c] if c else trial.run).position = record.position
                self._cache[run_id] = trial
                return trial.view()
        raise ConcurrencyError(f"run {run_id}: gave up after {_RETRIES} conflicting writes")

    @staticmethod
    def _applied(acc: StreamFold, facts: Sequence[ev.Fact], now: _dt.datetime) -> StreamFold:
        clone = StreamFold.copy(acc)
        for fact in facts:
            clone.apply(fact, now)
        return clone

    async def rerun(self, run_id: int, **changes: Any) -> RunView:
        """A new run of the same dialect, operation, name, containers and params, with
        ``mode="rerun"`` and the lineage set; the original is never reopened. ``changes``
        override fields of the new ``Requested`` (e.g. ``job_version=``)."""
        return await self._again(run_id, "rerun", changes)

    async def resume(self, run_id: int, **changes: Any) -> RunView:
        """Like ``rerun``, with ``mode="resume"``: containers that succeeded in the original run
        are completed at once in the new one, with ``cached_from`` set (and their stored result
        carried over); the others start afresh."""
        original = await self.get(run_id)
        view = await self._again(run_id, "resume", changes)
        for name, c in original.containers.items():
            if c.outcome == "succeeded" and name in view.containers:
                facts: builtins.list[ev.Fact] = list(START_SEQUENCE)
                if c.result is not None:
                    facts.append(c.result)
                facts.append(ev.ExecutionSucceeded(cached_from=c.cached_from or run_id))
                await self.record(view.run_id, facts, container=name)
        return await self.get(view.run_id)

    async def _again(
        self, run_id: int, mode: Literal["rerun", "resume"], changes: dict[str, Any]
    ) -> RunView:
        original = await self._load(run_id)
        req = original.run.requested
        assert req is not None  # _load guarantees a Requested head
        if not original.terminal:
            raise InvalidTransition(
                dialect=req.dialect,
                state=original.run.state,
                fact="Requested",
                stream=run_stream(run_id),
                hint=f"Run {run_id} is still active; a {mode} "
                "creates a new run from a terminal one. Abort it first.",
            )
        fields: dict[str, Any] = {
            "operation": req.operation,
            # every container, those added while it ran (ContainerAdded) too
            "containers": tuple(original.containers),
            "name": req.name,
            "params": req.params,
            "build": req.build,
            "job_version": req.job_version,
        }
        fields.update(changes)
        return await self.create(
            req.dialect,
            mode=mode,
            original_run_id=run_id,
            root_run_id=req.root_run_id or run_id,
            **fields,
        )
