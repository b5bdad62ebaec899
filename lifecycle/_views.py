"""Derived views: folding facts into what a run looks like now.

:func:`fold` is pure: ``fold(dialect, events) -> RunView``. :class:`Projector` is the same fold
kept open, fed record by record or in bulk, over any number of interleaved runs (replay, the run
service's cache, the store's read model). The per-fact work is one table lookup plus a dict lookup
for the few facts that carry view fields (times, reasons, logs, results).

The Warning indicator is not a state: a run's ``state`` stays ``Success`` / ``Completed`` /
``Succeeded``; ``warning`` is true iff the run ended in a succeeded state and, while it ran, a log
entry of level warning or above was recorded in it or in a container, or a container ended failed
or cancelled.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from . import events as ev
from ._dialects import START, Dialect, rejection, resolve
from ._dialects import dialect as find_dialect
from ._errors import InvalidTransition, UnknownRun

__all__ = [
    "ContainerView",
    "Projector",
    "RunView",
    "container_stream",
    "fold",
    "parse_stream",
    "run_stream",
]

WARNING_LEVELS: Final = frozenset({"warning", "warn", "error", "critical", "fatal"})


def run_stream(run_id: int) -> str:
    """The stream of a run: ``run-{id}``."""
    return f"run-{run_id}"


def container_stream(run_id: int, container: str) -> str:
    """The stream of one container of a run: ``run-{id}/{container}``."""
    return f"run-{run_id}/{container}"


def parse_stream(stream: str) -> tuple[int, str | None]:
    """``"run-7/orders"`` → ``(7, "orders")``; ``"run-7"`` → ``(7, None)``."""
    head, _, container = stream.partition("/")
    if not head.startswith("run-") or not head[4:].isdigit():
        raise UnknownRun(f"{stream!r} is not a run stream (expected run-ID or run-ID/container)")
    return int(head[4:]), (container or None)


class ContainerView(msgspec.Struct, frozen=True, kw_only=True):
    """One container of a run, as its facts say."""

    name: str
    state: str
    phase: Literal["active", "terminal"]
    terminal: bool
    outcome: str | None
    warning: bool
    version: int
    created_at: _dt.datetime | None = None
    started_at: _dt.datetime | None = None
    ended_at: _dt.datetime | None = None
    reason: str | None = None
    cached_from: int | None = None
    result: ev.ResultStored | None = None
    attempt: int = 1
    """1, plus one for each ``Requeued`` (a retry): the attempt running now or that ended it."""


class RunView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A run, as its facts and its containers' facts say. ``id`` is ``run_id``.

    Not tracked by the cyclic GC: a view holds data only (its ``params`` and ``containers`` are
    its own copies), and a replay makes one per run — tracked, 100,000 of them would be walked
    by every full collection that follows. (Put a view inside its own ``params`` and it would
    never be freed.)
    """

    run_id: int
    dialect: str
    operation: str
    name: str
    state: str
    phase: Literal["active", "terminal"]
    terminal: bool
    outcome: str | None
    warning: bool
    version: int
    position: int = 0
    created_at: _dt.datetime | None = None
    started_at: _dt.datetime | None = None
    ended_at: _dt.datetime | None = None
    mode: str = "new"
    original_run_id: int | None = None
    root_run_id: int | None = None
    job_version: int | None = None
    reason: str | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    containers: dict[str, ContainerView] = msgspec.field(default_factory=dict)
    attempt: int = 1
    """1, plus one for each ``Requeued`` of the run itself (containers count their own)."""

    @property
    def id(self) -> int:
        return self.run_id


# -- the accumulator ------------------------------------------------------------------------------


class StreamFold:
    """The open fold of one stream. Mutable, private to its owner; snapshot with ``view()``."""

    __slots__ = (
        "attempt",
        "cached_from",
        "created_at",
        "dialect",
        "ended_at",
        "ending",
        "position",
        "reason",
        "requested",
        "result",
        "row",
        "rows",
        "started_at",
        "state",
        "stream",
        "version",
        "warned",
    )

    def __init__(self, dialect: Dialect, stream: str) -> None:
        self.dialect = dialect
        self.stream = stream
        self.rows = dialect.table.rows
        self.state: str = START
        self.row = self.rows[START]
        self.version = 0
        self.position = 0
        self.requested: ev.Requested | None = None
        self.created_at: _dt.datetime | None = None
        self.started_at: _dt.datetime | None = None
        self.ended_at: _dt.datetime | None = None
        self.ending: ev.Fact | None = None  # the fact that made it terminal
        self.reason: str | None = None
        self.warned = False
        self.cached_from: int | None = None
        self.result: ev.ResultStored | None = None
        self.attempt = 1

    @property
    def outcome(self) -> str | None:
        return self.dialect.table.outcome[self.state]

    def copy(self) -> StreamFold:
        """A copy to try facts on (``apply`` changes the fold it is called on)."""
        clone = StreamFold.__new__(StreamFold)
        for slot in StreamFold.__slots__:
            setattr(clone, slot, getattr(self, slot))
        return clone

    def apply(self, fact: ev.Fact, at: _dt.datetime | None = None, position: int = 0) -> None:
        """Fold one fact in; raises ``InvalidTransition``, changing nothing, if it does not fit."""
        entry = self.row.get(fact.__class__)
        if entry is None or entry.__class__ is not str:
            dest = None if entry is None else resolve(entry, fact)
            if dest is None:
                raise rejection(
                    self.dialect, self.state, fact, stream=self.stream, version=self.version
                )
            entry = dest
        if entry is not self.state:
            self.state = entry
            self.row = self.rows[entry]
            if self.dialect.table.outcome[entry] is not None:
                self.ended_at = at
                self.ending = fact
        self.version += 1
        self.position = position
        effect = _EFFECTS.get(fact.__class__)
        if effect is not None:
            effect(self, fact, at)

    def container_view(self, name: str) -> ContainerView:
        outcome = self.dialect.table.outcome[self.state]
        return ContainerView(
            name=name,
            state=self.state,
            phase="active" if outcome is None else "terminal",
            terminal=outcome is not None,
            outcome=outcome,
            warning=self.warned,
            version=self.version,
            created_at=self.created_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            reason=self.reason,
            cached_from=self.cached_from,
            result=self.result,
            attempt=self.attempt,
        )


def _on_requested(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.requested = fact
    acc.created_at = at


def _on_started(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    if acc.started_at is None:
        acc.started_at = at


def _on_log(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    if fact.level in WARNING_LEVELS:
        acc.warned = True


def _on_error(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.reason = fact.error or (f"exit code {fact.exit_code}" if fact.exit_code else "failed")


def _on_reason(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.reason = fact.reason


def _on_oom(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    limit = f" (limit {fact.limit_bytes} bytes)" if fact.limit_bytes else ""
    acc.reason = f"out of memory{limit}"


def _on_succeeded(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.cached_from = fact.cached_from


def _on_result(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.result = fact


def _on_requeued(acc: StreamFold, fact: Any, at: _dt.datetime | None) -> None:
    acc.attempt += 1


_EFFECTS: Final[dict[type, Callable[[StreamFold, Any, _dt.datetime | None], None]]] = {
    ev.Requested: _on_requested,
    ev.ExecutionStarted: _on_started,
    ev.LogRecorded: _on_log,
    ev.ExecutionFailed: _on_error,
    ev.BuildFailed: _on_reason,
    ev.InfrastructureFailed: _on_reason,
    ev.Stopped: _on_reason,
    ev.OutOfMemory: _on_oom,
    ev.ExecutionSucceeded: _on_succeeded,
    ev.ResultStored: _on_result,
    ev.Requeued: _on_requeued,
}


def _guarded(entry: Any, fact: ev.Fact) -> str | None:
    """The destination of a guarded table entry for ``fact`` (``None``: no guard matches, or
    no entry) — :func:`~lifecycle._dialects.resolve` without its generator, for the hot path."""
    if entry is None:
        return None
    for guard, dest in entry:
        for field, value in guard:
            if getattr(fact, field) != value:
                break
        else:
            return dest  # type: ignore[no-any-return]
    return None


# -- runs: a run stream and its container streams -------------------------------------------------


class RunFold:
    """The open fold of one run: its own stream and one per container."""

    __slots__ = ("containers", "dialect", "run", "run_id", "seen")

    def __init__(self, dialect: Dialect, run_id: int) -> None:
        self.dialect = dialect
        self.run_id = run_id
        self.run = StreamFold(dialect, run_stream(run_id))
        self.containers: dict[str, StreamFold] = {}
        self.seen = 0  # every stream of the run has been read up to this global position

    def stream(self, container: str | None) -> StreamFold:
        """The fold of the run (``None``) or of one of its containers (made on first use)."""
        if container is None:
            return self.run
        acc = self.containers.get(container)
        if acc is None:
            child = self.dialect.containers
            if child is None:
                raise InvalidTransition(
                    dialect=self.dialect.name,
                    state=self.run.state,
                    fact="(container fact)",
                    stream=container_stream(self.run_id, container),
                    hint=f"Dialect {self.dialect.name} has no container streams.",
                )
            acc = self.containers[container] = StreamFold(
                child, container_stream(self.run_id, container)
            )
        return acc

    def apply(self, record: ev.Recorded) -> None:
        _, container = parse_stream(record.stream)
        self.stream(container).apply(record.event, record.recorded_at, record.position)

    def catch_up(self, records: Iterable[ev.Recorded]) -> None:
        """Fold records read from the store after ``seen``, skipping those already folded
        (written by this process, so known by version), and advance ``seen``."""
        for record in records:
            acc = self.stream(parse_stream(record.stream)[1])
            if record.version > acc.version:
                acc.apply(record.event, record.recorded_at, record.position)
            self.seen = max(self.seen, record.position)

    @property
    def terminal(self) -> bool:
        return self.dialect.table.outcome[self.run.state] is not None

    def view(self) -> RunView:
        run = self.run
        outcome = run.dialect.table.outcome[run.state]
        req = run.requested
        if self.containers:
            containers = {name: acc.container_view(name) for name, acc in self.containers.items()}
            warning = outcome == "succeeded" and (
                run.warned
                or any(
                    c.warning or c.outcome in ("failed", "cancelled") for c in containers.values()
                )
            )
            position = max([run.position, *(c.position for c in self.containers.values())])
        else:
            containers = {}
            warning = outcome == "succeeded" and run.warned
            position = run.position
        return RunView(
            run_id=self.run_id,
            dialect=self.dialect.name,
            operation=req.operation if req else "",
            name=req.name if req else "",
            state=run.state,
            phase="active" if outcome is None else "terminal",
            terminal=outcome is not None,
            outcome=outcome,
            warning=warning,
            version=run.version,
            position=position,
            created_at=run.created_at,
            started_at=run.started_at,
            ended_at=run.ended_at,
            mode=req.mode if req else "new",
            original_run_id=req.original_run_id if req else None,
            root_run_id=req.root_run_id if req else None,
            job_version=req.job_version if req else None,
            reason=run.reason,
            params=dict(req.params) if req else {},
            containers=containers,
            attempt=run.attempt,
        )


class Projector:
    """Folds interleaved records of many runs into views, record by record.

    ``dialect=None`` takes each run's dialect from its ``Requested`` fact; a given dialect views
    every run through it (replaying a log under another dialect). With ``strict=False`` a record
    that does not fit is kept in ``errors`` (first per run) instead of raised, and its run stops
    folding.
    """

    def __init__(self, dialect: Dialect | str | None = None, *, strict: bool = True) -> None:
        self.dialect = find_dialect(dialect) if dialect is not None else None
        self.strict = strict
        self.runs: dict[int, RunFold] = {}
        self.errors: dict[int, tuple[ev.Recorded, InvalidTransition]] = {}
        self.position = 0
        # the fold of each stream seen, and its run's id: no tuple per stream, which the
        # cyclic GC would have to walk on every full collection of a big replay
        self._by_stream: dict[str, StreamFold] = {}
        self._run_of: dict[str, int] = {}

    def _open(self, stream: str, fact: ev.Fact) -> tuple[int, StreamFold]:
        """The id of ``stream``'s run and the stream's fold, opened by its first fact."""
        run_id, container = parse_stream(stream)
        run = self.runs.get(run_id)
        if run is None:
            d = self.dialect
            if d is None:
                if container is not None or not isinstance(fact, ev.Requested):
                    raise InvalidTransition(
                        dialect="?",
                        state=START,
                        fact=type(fact).__name__,
                        stream=stream,
                        version=0,
                        hint="A run's first fact must be Requested on its run stream.",
                    )
                d = find_dialect(fact.dialect)
            run = self.runs[run_id] = RunFold(d, run_id)
        acc = self._by_stream[stream] = run.stream(container)
        self._run_of[stream] = run_id
        return run_id, acc

    def feed(self, records: Iterable[ev.Recorded]) -> None:
        """Fold many records. The hot path: a fact that leaves the state as it is (logs, the
        phases a dialect tolerates) costs one table lookup and, for logs, one level check."""
        by_stream = self._by_stream
        run_of = self._run_of
        errors = self.errors
        effects = _EFFECTS
        log = ev.LogRecorded
        warning_levels = WARNING_LEVELS
        position = self.position
        try:
            for record in records:
                acc = by_stream.get(record.stream)
                if acc is None:
                    if errors and parse_stream(record.stream)[0] in errors:
                        continue  # a run that could not be opened is not opened later
                    try:
                        acc = self._open(record.stream, record.event)[1]
                    except InvalidTransition as exc:
                        if self.strict:
                            raise
                        errors.setdefault(parse_stream(record.stream)[0], (record, exc))
                        continue
                if errors and run_of[record.stream] in errors:
                    continue  # this run already diverged: fold no further
                fact = record.event
                cls = fact.__class__
                position = record.position
                entry = acc.row.get(cls)
                if entry.__class__ is not str:  # guarded, or not accepted
                    entry = _guarded(entry, fact)
                    if entry is None:
                        try:
                            acc.apply(fact, record.recorded_at, position)  # raises the rejection
                        except InvalidTransition as exc:
                            if self.strict:
                                raise
                            errors[run_of[record.stream]] = (record, exc)
                        continue
                if entry is acc.state:  # accepted, no state change
                    if cls is log:
                        if fact.level in warning_levels:  # type: ignore[union-attr]
                            acc.warned = True
                    elif cls in effects:
                        effects[cls](acc, fact, record.recorded_at)
                    acc.version += 1
                    acc.position = position
                    continue
                acc.state = entry
                acc.row = acc.rows[entry]
                if acc.dialect.table.outcome[entry] is not None:
                    acc.ended_at = record.recorded_at
                    acc.ending = fact
                acc.version += 1
                acc.position = position
                if cls in effects:
                    effects[cls](acc, fact, record.recorded_at)
        finally:
            self.position = max(self.position, position)

    def _feed_columns(
        self,
        *,
        accs: dict[int, StreamFold],
        run_ids: dict[int, int],
        names: Mapping[int, str],
        keys: Sequence[int],
        positions: Sequence[int],
        times: Sequence[int],
        facts: Sequence[ev.Fact],
        to_time: Callable[[int], _dt.datetime],
        record: Callable[[int], ev.Recorded],
    ) -> None:
        """:meth:`feed` for a log read as columns, without a ``Recorded`` per fact (replay's
        fast path for the SQLite store): row ``i`` is ``facts[i]`` of the stream with key
        ``keys[i]`` (named ``names[key]``), at ``positions[i]``, recorded at ``times[i]`` — a
        number ``to_time`` converts, only for the facts whose time is kept. ``accs`` and
        ``run_ids`` remember the fold and the run of each key seen; they belong to the caller.
        ``record(position)`` makes the envelope of a row that lands in ``errors``. Folds
        exactly as ``feed`` does."""
        by_stream = self._by_stream
        run_of = self._run_of
        errors = self.errors
        effects = _EFFECTS
        log = ev.LogRecorded
        warning_levels = WARNING_LEVELS
        stamps: dict[int, _dt.datetime] = {}  # the facts of one append share their time
        position = self.position
        try:
            for key, pos, us, fact in zip(keys, positions, times, facts, strict=True):
                acc = accs.get(key)
                if acc is None:
                    stream = names[key]
                    acc = by_stream.get(stream)
                    if acc is None:
                        if errors and parse_stream(stream)[0] in errors:
                            continue  # a run that could not be opened is not opened later
                        try:
                            run_ids[key], acc = self._open(stream, fact)
                        except InvalidTransition as exc:
                            if self.strict:
                                raise
                            errors.setdefault(parse_stream(stream)[0], (record(pos), exc))
                            continue
                    else:
                        run_ids[key] = run_of[stream]
                    accs[key] = acc
                if errors and run_ids[key] in errors:
                    continue  # this run already diverged: fold no further
                cls = fact.__class__
                position = pos
                entry = acc.row.get(cls)
                if entry.__class__ is not str:  # guarded, or not accepted
                    entry = _guarded(entry, fact)
                    if entry is None:
                        at = stamps.get(us)
                        if at is None:
                            at = stamps[us] = to_time(us)
                        try:
                            acc.apply(fact, at, pos)  # raises the rejection
                        except InvalidTransition as exc:
                            if self.strict:
                                raise
                            errors[run_ids[key]] = (record(pos), exc)
                        continue
                if entry is acc.state:  # accepted, no state change
                    if cls is log:
                        if fact.level in warning_levels:  # type: ignore[attr-defined]
                            acc.warned = True
                    elif cls in effects:
                        at = stamps.get(us)
                        if at is None:
                            at = stamps[us] = to_time(us)
                        effects[cls](acc, fact, at)
                    acc.version += 1
                    acc.position = pos
                    continue
                at = stamps.get(us)
                if at is None:
                    at = stamps[us] = to_time(us)
                acc.state = entry
                acc.row = acc.rows[entry]
                if acc.dialect.table.outcome[entry] is not None:
                    acc.ended_at = at
                    acc.ending = fact
                acc.version += 1
                acc.position = pos
                if cls in effects:
                    effects[cls](acc, fact, at)
        finally:
            self.position = max(self.position, position)

    def view(self, run_id: int) -> RunView:
        try:
            return self.runs[run_id].view()
        except KeyError:
            raise UnknownRun(f"no run {run_id} in what was folded") from None

    def views(self) -> Iterator[RunView]:
        for run in self.runs.values():
            yield run.view()


def fold(
    dialect: Dialect | str | None,
    events: Iterable[ev.Recorded | ev.Fact],
    *,
    run_id: int | None = None,
) -> RunView:
    """Fold one run's facts into its view. Pure.

    ``events`` are ``Recorded`` envelopes (the run's stream and its containers', in any
    interleaving that keeps each stream in order) or bare facts of the run stream (then times are
    unknown and ``run_id`` defaults to 0). ``dialect=None`` uses the one named by ``Requested``.
    Raises ``InvalidTransition`` at the first fact that does not fit.
    """
    items = list(events)
    if items and isinstance(items[0], ev.Recorded):
        projector = Projector(dialect)
        projector.feed(items)  # type: ignore[arg-type]
        if not projector.runs:
            raise UnknownRun("no facts to fold")
        if run_id is None:
            if len(projector.runs) > 1:
                raise UnknownRun(f"events of {len(projector.runs)} runs given; pass run_id=")
            run_id = next(iter(projector.runs))
        return projector.view(run_id)
    facts: list[ev.Fact] = items  # type: ignore[assignment]
    if dialect is None:
        first = facts[0] if facts else None
        if not isinstance(first, ev.Requested):
            raise InvalidTransition(
                dialect="?",
                state=START,
                fact=type(first).__name__,
                hint="A run's first fact must be Requested.",
            )
        dialect = first.dialect
    run = RunFold(find_dialect(dialect), run_id or 0)
    for fact in facts:
        run.run.apply(fact)
    return run.view()
