"""The store interface, in two capability layers.

:class:`EventStore` is what any event log must do — four methods: ``append`` (atomic, with
expected versions and idempotent event ids), ``read`` (some streams), ``read_all`` (everything
after a global position) and ``wait`` (until something new is committed). :class:`RunStore` adds
what the run service needs on top: run ids, the ``runs`` read model kept in the same transaction
as the facts, and blobs for cached results.

Guarantees every backend gives (``lifecycle.testing.check_event_store`` proves them):

1. **Atomic append** — every fact of one ``append`` call, across all its writes, is stored, or
   none is.
2. **Expected version** per stream — ``None`` (any), ``0`` (the stream must not exist) or ``n``
   (it must be at version ``n``) — checked inside the write lock.
3. **Idempotent retry** — re-sending an acknowledged append (same event ids) returns the original
   records and writes nothing; a partial overlap raises ``IdempotencyConflict``.
4. **Dense versions** 1..n per stream; a global ``position`` that increases in commit order, so a
   reader that resumes after the last position it saw never skips an event.

Arguments — one answer per domain, the same in every store (``check_event_store`` holds each
store to it; the interface methods are guarded here, in :meth:`EventStore.__init_subclass__`, so a
store written elsewhere gets the same checks without calling them):

- ``append``: every fact is validated against its declared field types (``InvalidFact``, nothing
  written); a ``Write`` needs a non-empty ``stream`` (``ValueError``), an ``expected_version``
  that is ``None`` or an ``int`` ≥ 0 (``ValueError``), ``str`` event ids (``TypeError``);
  ``summaries`` rows with their declared field types (``TypeError``). ``[]`` and
  writes without events append nothing (an empty write only checks its expected version). A
  stream may be named by several writes of one append; each expected version is checked against
  the version the stream had *before* the append.
- ``read``: ``streams`` is a sequence of names, not one ``str`` (``TypeError``); ``[]`` reads
  nothing; a stream named twice is read once; an unknown stream has no records.
- ``read_all`` / ``list_runs``: ``limit`` ``None`` is no limit, ``0`` gives ``[]``, a negative
  one is a ``ValueError``; ``after`` ≤ 0 (for ``read`` too) reads from the start, ``after`` at or
  past the head gives ``[]``. ``list_runs`` bounds with ``start_time > end_time`` give ``[]``, as
  do names, states or dialects no run has.
- ``wait(after)`` with ``after`` below the head returns the head at once (negative: from 0).

Times: every datetime the interface takes (``at``, ``Write.recorded_at``, the ``list_runs``
bounds, the times of a ``RunSummary``) is UTC when it is naive; every datetime it returns is
UTC-aware, in UTC (one given in another zone comes back converted).
"""

from __future__ import annotations

import datetime as _dt
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Coroutine, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeAlias

import msgspec

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, IdempotencyConflict

__all__ = [
    "REBUILD_PAGE",
    "EventStore",
    "Lease",
    "RebuildProgress",
    "RunGroup",
    "RunStore",
    "RunSummary",
    "SummaryFold",
    "Write",
    "as_utc",
    "check_expected",
    "check_limit",
    "check_streams",
    "fold_pages",
    "resolve_retry",
    "summary_in_utc",
    "validate_summaries",
    "validate_writes",
]

REBUILD_PAGE: Final = 10_000
"""Records read per page while rebuilding the read model (bounded memory, few round trips)."""


class Write(msgspec.Struct, frozen=True, kw_only=True):
    """Facts to append to one stream. ``events`` may be empty: then the write only checks
    ``expected_version`` (how a run-level fact asserts its containers did not move).

    ``event_ids`` make an append retryable (guarantee 3): give them for **every** write of an
    append, or for none. The store makes fresh ids for a write without them — different ones
    on each try — so an append that gives ids for some writes but not others can never be
    retried: the retry finds the given ids stored and the fresh ones not, and raises
    ``IdempotencyConflict``."""

    stream: str
    events: tuple[ev.Fact, ...] = ()
    expected_version: int | None = None
    event_ids: tuple[str, ...] | None = None
    recorded_at: tuple[_dt.datetime, ...] | None = None
    """Per-event times, for imports that keep the original ones; otherwise the append's. A
    naive one is UTC; the records returned and read back carry each in UTC."""

    def times(self, default: _dt.datetime) -> tuple[_dt.datetime, ...]:
        """The ``recorded_at`` of each event: as given, or ``default`` for all."""
        if self.recorded_at is None:
            return (default,) * len(self.events)
        if len(self.recorded_at) != len(self.events):
            raise ValueError(
                f"{self.stream}: {len(self.events)} events but {len(self.recorded_at)} times"
            )
        return self.recorded_at

    def ids(self) -> tuple[str, ...]:
        """The event ids, made fresh (time-ordered) where the caller gave none."""
        if self.event_ids is None:
            return tuple(ev.new_event_id() for _ in self.events)
        if len(self.event_ids) != len(self.events):
            raise ValueError(
                f"{self.stream}: {len(self.events)} events but {len(self.event_ids)} event ids"
            )
        return self.event_ids


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the ``runs`` read model: what listings show, without the containers.
    Derived from the log and rebuildable from it.

    It holds what changes only with the run stream's state, times and reason — not the run's
    version, which every fact of the run stream moves: ``runs.get(run_id).version`` has it."""

    run_id: int
    dialect: str
    operation: str
    name: str
    state: str
    outcome: str | None
    terminal: bool
    warning: bool
    created_at: _dt.datetime | None = None
    started_at: _dt.datetime | None = None
    ended_at: _dt.datetime | None = None
    original_run_id: int | None = None
    root_run_id: int | None = None
    job_version: int | None = None
    reason: str | None = None

    @property
    def id(self) -> int:
        return self.run_id


class RunGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Runs of the read model grouped as jobs are (``lifecycle job ls``): by name, and runs
    without a name by dialect. ``dialect`` is that of the newest run of the group, whose id is
    ``last_run_id``; ``runs`` counts the group."""

    name: str
    dialect: str
    runs: int
    last_run_id: int


class SummaryFold(Protocol):
    """What :meth:`RunStore.rebuild_summaries` folds the log with: fed every record of the log
    once, in position order (in pages), then asked for the read model's rows — and for the runs
    it could not fold (``kept``: say, a run of a dialect not registered in this process), whose
    rows the store must leave exactly as they are (or absent, if absent).

    ``feed`` and ``summaries`` may be called on a store's worker thread (the SQLite store folds
    the last records inside its write transaction): they must be plain computation, touching
    no event loop. ``summaries`` may be asked more than once, with records fed in between (the
    SQLite store asks before taking its write lock, and again inside it): a fold that keeps its
    rows and makes again only those of the runs fed since keeps that lock short. ``kept`` is
    asked after the last ``summaries``. An exception from any method aborts the rebuild,
    leaving the read model as it was."""

    def feed(self, records: Sequence[ev.Recorded]) -> None: ...

    def summaries(self) -> list[RunSummary]:
        """The rows to write, by run id; none for a run in :meth:`kept`."""
        ...

    def kept(self) -> Collection[int]:
        """The run ids whose rows the store leaves as they are instead of replacing."""
        ...


RebuildProgress: TypeAlias = Callable[[int, int | None], None]
"""Called during a rebuild with the position read so far and the head position the rebuild is
heading for (``None`` when the store cannot tell). Its last call comes before the read model is
replaced — on the SQLite store, from inside the write transaction, on its writer thread — so it
must be plain computation, like a :class:`SummaryFold`; an exception from it aborts the rebuild,
leaving the read model as it was."""


def as_utc(at: _dt.datetime) -> _dt.datetime:
    """``at`` in UTC, UTC-aware: a naive datetime is taken to be UTC (how every store reads
    naive times), an aware one in another zone is converted."""
    if at.tzinfo is None:
        return at.replace(tzinfo=_dt.UTC)
    return at if at.tzinfo is _dt.UTC else at.astimezone(_dt.UTC)


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """Who drives a run, until when. An engine renews its leases while it lives; a lease past
    ``expires_at`` on an active run means its owner died (the run is ended ``engine_lost``)."""

    run_id: int
    owner: str
    expires_at: _dt.datetime


# -- argument checks every store gets (EventStore.__init_subclass__ wraps its methods) -----------

_Method: TypeAlias = Callable[..., Coroutine[Any, Any, Any]]


def _guarded(fn: _Method) -> _Method:
    """Mark ``fn`` as checked, so a subclass that inherits it does not wrap it again."""
    fn.__lifecycle_guarded__ = True  # type: ignore[attr-defined]
    return fn


def _guard_append(fn: _Method) -> _Method:
    @functools.wraps(fn)
    async def append(self: EventStore, *args: Any, **kw: Any) -> Any:
        validate_writes(args[0] if args else kw.get("writes", ()))
        summaries = kw.get("summaries")
        if summaries:
            validate_summaries(summaries)
        return await fn(self, *args, **kw)

    return _guarded(append)


def _from_start(kw: dict[str, Any]) -> None:
    """``after`` ≤ 0 reads from the start: backends are handed 0, never a negative position
    (SQLite's damage check expects the first position read to be ``after + 1``)."""
    if kw.get("after", 0) < 0:
        kw["after"] = 0


def _guard_read(fn: _Method) -> _Method:
    @functools.wraps(fn)
    async def read(self: EventStore, *args: Any, **kw: Any) -> Any:
        check_streams(args[0] if args else kw.get("streams", ()))
        _from_start(kw)
        return await fn(self, *args, **kw)

    return _guarded(read)


def _guard_limit(call: str) -> Callable[[_Method], _Method]:
    def guard(fn: _Method) -> _Method:
        @functools.wraps(fn)
        async def method(self: EventStore, *args: Any, **kw: Any) -> Any:
            check_limit(kw.get("limit"), call)
            _from_start(kw)
            return await fn(self, *args, **kw)

        return _guarded(method)

    return guard


_GUARDS: Final[dict[str, Callable[[_Method], _Method]]] = {
    "append": _guard_append,
    "read": _guard_read,
    "read_all": _guard_limit("read_all"),
    "list_runs": _guard_limit("list_runs"),
}


class EventStore(ABC):
    """An append-only log of streams. Use as ``async with store:``; ``aclose`` releases it.

    Every subclass's ``append``, ``read``, ``read_all`` and ``list_runs`` are wrapped, once, by
    the argument checks of this module (see the module docstring), so no store — built in or
    not — can be handed a fact it could not read back.
    """

    url: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, guard in _GUARDS.items():
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "__lifecycle_guarded__", False):
                setattr(cls, name, guard(fn))

    @abstractmethod
    async def append(
        self,
        writes: Sequence[Write],
        *,
        summaries: Sequence[RunSummary] = (),
        at: _dt.datetime | None = None,
    ) -> list[ev.Recorded]:
        """Append atomically; return the records in the order given.

        ``summaries`` are upserted into the read model in the same transaction; ``at`` is the
        ``recorded_at`` of every record (now when not given). Times are returned, stored and
        read back in UTC (a naive one is taken to be UTC). Raises ``ConcurrencyError`` (an
        expected version did not match), ``IdempotencyConflict`` (event ids partly stored
        already — which is also what retrying an append that gave ids to some of its writes but
        not all raises: see :class:`Write`), ``StoreError`` (the backend failed). Nothing is
        written then.
        """

    @abstractmethod
    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        """Records of these streams with a position greater than ``after``, in position order;
        each record once, even when a stream is named twice."""

    @abstractmethod
    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        """Every record with a position greater than ``after``, in position order."""

    @abstractmethod
    async def wait(self, after: int) -> int:
        """Return the head position as soon as it is greater than ``after``. Bound the wait
        with a cancel scope (``anyio.move_on_after``): this method has no timeout of its own."""

    async def aclose(self) -> None:  # noqa: B027  (optional: most backends hold nothing)
        """Release what the store holds. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class RunStore(EventStore):
    """An event store that also keeps what the run service needs: run ids, the ``runs`` read
    model, blobs and leases.

    The read model is derived data: ``append(summaries=…)`` upserts rows in the same
    transaction as the facts, and :meth:`rebuild_summaries` recomputes all of it from the log.
    Naive datetimes given to any method (the ``list_runs`` bounds included) are UTC.
    """

    @abstractmethod
    async def next_run_id(self) -> int:
        """A new positive run id, never handed out before, and greater than the id of every
        ``run-N`` stream appended so far (imports keep their run ids)."""

    @abstractmethod
    async def list_runs(
        self,
        *,
        name: str | None = None,
        state: str | None = None,
        dialect: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """Runs from the read model, newest first (by run id); ``start_time``/``end_time``
        bound, inclusively, when the run was created (either may be omitted; naive = UTC)."""

    async def run_groups(self) -> list[RunGroup]:
        """Every group of runs (see :class:`RunGroup`), by name then dialect. This default
        lists every run; a backend with an index answers it without loading the rows."""
        groups: dict[tuple[str, str], list[int]] = {}
        dialects: dict[str, tuple[int, str]] = {}  # name -> (newest run id, its dialect)
        for s in await self.list_runs():
            key = (s.name, "" if s.name else s.dialect)
            group = groups.setdefault(key, [0, 0])
            group[0] += 1
            group[1] = max(group[1], s.run_id)
            if s.run_id >= dialects.get(s.name, (0, ""))[0]:
                dialects[s.name] = (s.run_id, s.dialect)
        return sorted(
            (
                RunGroup(
                    name=name,
                    dialect=dialect or dialects[name][1],
                    runs=runs,
                    last_run_id=last,
                )
                for (name, dialect), (runs, last) in groups.items()
            ),
            key=lambda g: (g.name, g.dialect),
        )

    @abstractmethod
    async def replace_summaries(self, summaries: Sequence[RunSummary]) -> None:
        """Replace the whole read model with ``summaries``. Not atomic with respect to appends
        folded from the log before it: rebuild with :meth:`rebuild_summaries`."""

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        """Feed every record of the log to ``fold`` (each once, in position order), replace the
        read model with ``fold.summaries()``, and return the rows it replaced (by run id).

        The rows of the runs in ``fold.kept()`` are left as they are (absent ones stay absent).

        A backend makes this atomic with respect to appends — the rows written are the fold of
        exactly the log at the moment of the replace, so no append (from this process or
        another) can land between the last read and the replace and be lost from the read
        model. Both built-in stores do: they read the log up to the head position it had when
        they started (so a steady stream of appends cannot keep them reading for ever), then
        read what was appended since and replace, with no append in between. This default is
        not atomic: it reads up to that head, reads the rest once, then replaces, and is right
        only while nothing else appends. ``progress`` is called after each page read.

        Raises ``StoreError`` (the backend failed, or is read-only), ``CorruptLog`` (a record
        cannot be read), or what ``fold`` or ``progress`` raises; the read model is left as it
        was then.
        """
        head = await self.wait(0) if await self.read_all(limit=1) else 0
        after = await fold_pages(self, fold, head, progress)
        rest = await self.read_all(after=after)
        if rest:
            fold.feed(rest)
            after = rest[-1].position
        rows = fold.summaries()
        keep = set(fold.kept())
        before = sorted(await self.list_runs(), key=lambda s: s.run_id)
        if progress is not None:
            progress(after, after)
        kept = [s for s in before if s.run_id in keep]
        await self.replace_summaries([*(s for s in rows if s.run_id not in keep), *kept])
        return before

    @abstractmethod
    async def put_blob(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key`` (results of containers). Overwrites."""

    @abstractmethod
    async def get_blob(self, key: str) -> bytes | None:
        """The bytes kept under ``key``, or ``None``."""

    @abstractmethod
    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        """Take, or renew, the lease on ``run_id`` for ``owner`` until ``ttl`` seconds from now.
        ``False`` (and nothing changed) if another owner holds a lease that has not expired."""

    @abstractmethod
    async def release_lease(self, run_id: int, owner: str) -> None:
        """Drop ``owner``'s lease on ``run_id`` (nothing if it holds none)."""

    @abstractmethod
    async def leases(self) -> list[Lease]:
        """Every lease held, expired ones included, by run id."""


# -- shared rules, so every backend words its errors the same way ---------------------------------


def validate_writes(writes: Sequence[Write]) -> None:
    """Refuse an append before anything is written: every fact is checked against its declared
    field types (``InvalidFact`` naming the fact, the field and the stream) and each ``Write``'s
    own fields (``ValueError``). Runs on every append of every store (the guard of
    :meth:`EventStore.__init_subclass__`), so it is kept to the storage round trip of each fact
    and a few type checks."""
    validate = ev.validate
    for w in writes:
        if not isinstance(w, Write):
            raise TypeError(f"append takes a sequence of Write, not {type(w).__name__}")
        stream = w.stream
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"a Write needs a non-empty stream name, not {stream!r}")
        expected = w.expected_version
        if expected is not None and (type(expected) is not int or expected < 0):
            raise ValueError(
                f"{stream}: expected_version must be None or an int >= 0, not {expected!r}"
            )
        for fact in w.events:
            validate(fact, stream=stream)
        if w.event_ids is not None:
            for event_id in w.event_ids:
                if not isinstance(event_id, str):
                    raise TypeError(f"{stream}: event ids must be str, not {event_id!r}")


_summary_encoder: Final = msgspec.msgpack.Encoder()
_summary_decoder: Final = msgspec.msgpack.Decoder(RunSummary)


def validate_summaries(summaries: Sequence[RunSummary]) -> None:
    """Refuse read-model rows whose fields do not have their declared types (``TypeError``
    naming the run and the field): a row with a ``str`` run id would break every listing."""
    for row in summaries:
        if not isinstance(row, RunSummary):
            raise TypeError(f"summaries takes RunSummary rows, not {type(row).__name__}")
        try:
            _summary_decoder.decode(_summary_encoder.encode(row))
        except (msgspec.ValidationError, msgspec.EncodeError, TypeError, ValueError) as exc:
            raise TypeError(
                f"RunSummary of run {row.run_id!r}: {exc}; nothing was written"
            ) from None


def summary_in_utc(s: RunSummary) -> RunSummary:
    """``s`` with its times in UTC (a naive one taken to be UTC), as every store returns them."""
    times = (s.created_at, s.started_at, s.ended_at)
    if all(t is None or t.tzinfo is _dt.UTC for t in times):
        return s
    created, started, ended = (None if t is None else as_utc(t) for t in times)
    return msgspec.structs.replace(s, created_at=created, started_at=started, ended_at=ended)


def check_limit(limit: int | None, call: str) -> None:
    """``limit`` is ``None`` (none) or an ``int`` ≥ 0; ``ValueError`` otherwise."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"{call}: limit must be None or an int >= 0, not {limit!r}")


def check_streams(streams: Sequence[str]) -> None:
    """``streams`` is a sequence of stream names — a lone ``str`` is refused (``TypeError``)
    rather than read as the streams named by its letters."""
    if isinstance(streams, str | bytes):
        raise TypeError(f"read takes a sequence of stream names, not one str: [{streams!r}]")


def check_expected(stream: str, expected: int | None, actual: int) -> None:
    """Raise ``ConcurrencyError`` unless ``actual`` satisfies ``expected``."""
    if expected is not None and expected != actual:
        wanted = "not to exist" if expected == 0 else f"to be at version {expected}"
        raise ConcurrencyError(
            f"expected {stream!r} {wanted}, but it is at version {actual}; "
            "someone else appended first: re-read the stream and decide again",
            stream=stream,
            expected=expected,
            actual=actual,
        )


def resolve_retry(
    ids: Sequence[str], stored: Sequence[ev.Recorded | None]
) -> list[ev.Recorded] | None:
    """Given the records already stored under ``ids`` (``None`` where absent): all present → the
    original records (an idempotent retry); none present → ``None`` (go ahead and write); some →
    ``IdempotencyConflict``."""
    if len(set(ids)) != len(ids):
        raise IdempotencyConflict("the same event id appears twice in one append")
    present = [r for r in stored if r is not None]
    if not present:
        return None
    if len(present) == len(stored):
        return present
    missing = [i for i, r in zip(ids, stored, strict=True) if r is None]
    raise IdempotencyConflict(
        f"{len(present)} of {len(ids)} event ids were already stored (missing: {missing[:3]}…); "
        "a retry must re-send exactly the batch that was sent before"
    )


async def fold_pages(
    store: EventStore, fold: SummaryFold, head: int, progress: RebuildProgress | None
) -> int:
    """A rebuild's first pass: feed ``fold`` the log up to position ``head`` (no further: with
    writers adding pages it would never end), ``REBUILD_PAGE`` records at a time, telling
    ``progress``. Returns the last position fed."""
    after = 0
    while after < head:
        page = await store.read_all(after=after, limit=REBUILD_PAGE)
        if not page:
            break
        fold.feed(page)
        after = page[-1].position
        if progress is not None:
            progress(after, max(head, after))
    return after
