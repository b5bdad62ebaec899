"""What every store check shares: fresh stores from ``make_store``, naming a failure after its
check, deadlines that fail instead of hanging, and comparing records readably.

A check is an ``async`` function of ``make_store`` that raises ``AssertionError`` — and only
``AssertionError`` — when the store does not conform: :func:`store_check` wraps it so that an
unexpected exception from the store (or a deadline) becomes one too, prefixed with the check's
name, with the cause chained.
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from itertools import pairwise
from typing import Any, TypeAlias

import anyio

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, IdempotencyConflict
from lifecycle._stores import RunStore, RunSummary, Write, open_store

__all__ = [
    "T0",
    "Acknowledged",
    "MakeStore",
    "StoreCheck",
    "StoreFactory",
    "Unsupported",
    "assert_dense",
    "assert_records",
    "current_backend",
    "deadline",
    "derive_url",
    "describe",
    "fresh_store",
    "fresh_url",
    "is_shareable",
    "log",
    "reconcile_race",
    "rejects",
    "store_check",
    "summary",
    "versions",
]

StoreFactory: TypeAlias = Callable[[], RunStore | str | Awaitable[RunStore | str]]
"""Makes one fresh, empty store per call: a store object (not yet entered), a URL of one, or an
awaitable of either."""

MakeStore: TypeAlias = StoreFactory | str
"""What the suite is given: a :data:`StoreFactory`, or a URL that it derives fresh URLs from."""

StoreCheck: TypeAlias = Callable[[MakeStore], Awaitable[None]]
"""One check of the suite: raises ``AssertionError`` naming itself when the store fails it."""

_MEMORY = ("memory://", "memory:")
TIME_TOLERANCE = _dt.timedelta(milliseconds=1)
"""How far a stored ``recorded_at`` may drift from the one appended (backends may keep ms)."""


class Unsupported(ValueError):
    """The check needs what this store cannot give (a URL other processes can open)."""


def current_backend() -> str:
    """The anyio backend running now (``"asyncio"`` or ``"trio"``)."""
    try:
        import sniffio  # noqa: PLC0415  (comes with anyio and trio)
    except ImportError:  # pragma: no cover
        return "asyncio"
    return sniffio.current_async_library()


def is_shareable(url: str) -> bool:
    """Whether another process (or a later open) can reach the same store through ``url``."""
    return bool(url) and url not in _MEMORY and "://" in url


def derive_url(url: str, label: str) -> str:
    """A fresh URL next to ``url``: ``sqlite:///d/runs.db`` → ``sqlite:///d/runs-LABEL-XXXXXXXX.db``
    (``memory://`` stays itself: every open is a new store)."""
    if url in _MEMORY:
        return url
    head, sep, query = url.partition("?")
    base, slash, name = head.rpartition("/")
    stem, dot, ext = name.partition(".")
    fresh = f"{stem or 'store'}-{label}-{uuid.uuid4().hex[:8]}{dot}{ext}"
    return f"{base}{slash}{fresh}{sep}{query}"


async def _make(make_store: MakeStore, label: str) -> RunStore:
    if isinstance(make_store, str):
        return open_store(derive_url(make_store, label))
    made = make_store()
    if inspect.isawaitable(made):
        made = await made
    if isinstance(made, str):
        return open_store(made)
    if not isinstance(made, RunStore):
        raise TypeError(f"make_store() returned {made!r}: a RunStore or a store URL was expected")
    return made


@asynccontextmanager
async def fresh_store(make_store: MakeStore, label: str) -> AsyncIterator[RunStore]:
    """A new store from ``make_store``, entered, checked to be empty, closed afterwards."""
    store = await _make(make_store, label)
    async with store:
        found = await store.read_all(limit=1)
        assert not found, (
            f"make_store gave a store that is not empty ({store.url}): every check needs a "
            "fresh one; pass a factory of new stores, or a URL in an empty directory"
        )
        yield store


async def fresh_url(make_store: MakeStore, label: str) -> str:
    """A URL of a fresh store that this and other processes can open (``memory://`` cannot)."""
    if isinstance(make_store, str):
        url = derive_url(make_store, label)
    else:
        store = await _make(make_store, label)
        url = store.url
        await store.aclose()
    if not is_shareable(url):
        raise Unsupported(
            f"this check opens the store again, from other processes too, so it needs a store "
            f"URL another process can open; {url or 'a store without a url'!r} is not one "
            "(memory:// lives in one process)"
        )
    return url


def store_check(
    name: str, registry: list[tuple[str, StoreCheck]]
) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    """Register a check under ``name``; its failures, and any unexpected error of the store,
    come out as one ``AssertionError`` that starts with the name."""

    def decorate(fn: Callable[[MakeStore], Awaitable[None]]) -> StoreCheck:
        @functools.wraps(fn)
        async def run(make_store: MakeStore) -> None:
            try:
                await fn(make_store)
            except Unsupported:
                raise  # a misuse (a store that cannot do what the check needs), not a failure
            except Exception as exc:
                failure = _first_assertion(exc)
                if failure is not None:
                    notes = "".join(f"\n{n}" for n in getattr(failure, "__notes__", ()))
                    raise AssertionError(f"store check {name!r} failed: {failure}{notes}") from exc
                raise AssertionError(
                    f"store check {name!r} failed: the store raised {type(exc).__name__}: {exc}"
                ) from exc

        registry.append((name, run))
        return run

    return decorate


def _first_assertion(exc: BaseException) -> AssertionError | None:
    if isinstance(exc, AssertionError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_assertion(inner)
            if found is not None:
                return found
    return None


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail (``AssertionError``) instead of hanging when the body takes longer than ``seconds``."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what}: no answer within {seconds:g} s") from None


def log(text: str) -> ev.LogRecorded:
    """A small fact whose text says where it came from."""
    return ev.LogRecorded(text=text)


def describe(record: ev.Recorded) -> str:
    """One record, short: ``stream@v3 #17 id=… LogRecorded``."""
    return (
        f"{record.stream}@v{record.version} #{record.position} id={record.event_id} "
        f"{type(record.event).__name__}"
    )


def _differs(a: ev.Recorded, b: ev.Recorded) -> str:
    for field in ("stream", "version", "position", "event_id", "event"):
        if getattr(a, field) != getattr(b, field):
            return f"{field} {getattr(a, field)!r} != {getattr(b, field)!r}"
    if a.recorded_at.utcoffset() != _dt.timedelta(0):
        return f"recorded_at {a.recorded_at!r} is not a UTC-aware datetime"
    if abs(a.recorded_at - b.recorded_at) > TIME_TOLERANCE:
        return f"recorded_at {a.recorded_at!r} != {b.recorded_at!r}"
    return ""


def assert_records(
    actual: Sequence[ev.Recorded], expected: Sequence[ev.Recorded], what: str
) -> None:
    """``actual`` is ``expected``, record for record (``recorded_at`` to within 1 ms); the
    message names ``what`` and the first difference."""
    for i, (a, b) in enumerate(zip(actual, expected, strict=False)):
        why = _differs(a, b)
        if why:
            raise AssertionError(
                f"{what}: record {i} is {describe(a)}, expected {describe(b)} ({why})"
            )
    if len(actual) != len(expected):
        if len(actual) > len(expected):
            detail = f"first extra {describe(actual[len(expected)])}"
        else:
            detail = f"first missing {describe(expected[len(actual)])}"
        raise AssertionError(
            f"{what}: {len(actual)} records where {len(expected)} were expected ({detail})"
        )


T0 = _dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=_dt.UTC)
"""A fixed, whole-second UTC time the checks build their data around."""


async def rejects(
    store: RunStore,
    writes: Sequence[Write],
    what: str,
    *,
    error: type[ConcurrencyError] = ConcurrencyError,
    summaries: Sequence[RunSummary] = (),
) -> ConcurrencyError:
    """The append must raise ``error`` (and, for ``ConcurrencyError``, not its subclass
    ``IdempotencyConflict``) and leave the log as it was."""
    before = await store.read_all()
    try:
        got = await store.append(writes, summaries=summaries)
    except error as exc:
        if error is ConcurrencyError and isinstance(exc, IdempotencyConflict):
            raise AssertionError(
                f"{what}: raised IdempotencyConflict ({exc}); a plain ConcurrencyError was expected"
            ) from exc
        caught = exc
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__} ({exc}); {error.__name__} was expected"
        ) from exc
    else:
        raise AssertionError(
            f"{what}: the append was accepted ({', '.join(map(describe, got)) or 'no records'}); "
            f"it must raise {error.__name__}"
        )
    assert_records(await store.read_all(), before, f"{what}: a rejected append wrote to the log")
    return caught


def versions(records: Sequence[ev.Recorded], stream: str) -> list[int]:
    return [r.version for r in records if r.stream == stream]


def assert_dense(records: Sequence[ev.Recorded], what: str) -> None:
    """Versions 1..n per stream, positions strictly increasing, no event id twice."""
    positions = [r.position for r in records]
    bad = [(p, q) for p, q in pairwise(positions) if p >= q]
    assert not bad, f"{what}: positions must strictly increase, but {bad[0][1]} follows {bad[0][0]}"
    seen: dict[str, int] = {}
    for r in records:
        want = seen.get(r.stream, 0) + 1
        assert r.version == want, (
            f"{what}: {describe(r)} where version {want} was due: versions must be 1..n, gap-free"
        )
        seen[r.stream] = want
    ids = [r.event_id for r in records]
    assert len(set(ids)) == len(ids), f"{what}: an event id is stored twice"


def summary(
    run_id: int,
    *,
    name: str,
    created: _dt.datetime,
    dialect: str = "qualytics",
    state: str = "Queued",
    **more: Any,
) -> RunSummary:
    """A read-model row with the fields the checks vary, the rest defaulted."""
    return RunSummary(
        run_id=run_id,
        dialect=dialect,
        operation="scan",
        name=name,
        state=state,
        outcome=more.pop("outcome", None),
        terminal=more.pop("terminal", False),
        warning=more.pop("warning", False),
        created_at=created,
        **more,
    )


Acknowledged: TypeAlias = tuple[str, int, int, str]
"""One record as a writer was told it was stored: stream, version, position, event id."""


def reconcile_race(
    stored: Sequence[ev.Recorded],
    won: Sequence[tuple[Sequence[Acknowledged], dict[str, int]]],
    lost: Sequence[tuple[Sequence[str], dict[str, int]]],
    attempts: int,
) -> None:
    """Check the log after writers raced with expected versions (one fact per stream per
    append): ``won`` holds what each successful append returned and the versions it expected,
    ``lost`` the event ids and expected versions of each append refused with
    ``ConcurrencyError``."""
    assert len(won) + len(lost) == attempts, (
        f"{attempts} appends were tried, but {len(won)} succeeded and {len(lost)} got "
        "ConcurrencyError: the others failed otherwise"
    )
    by_id = {r.event_id: r for r in stored}
    assert len(by_id) == len(stored), "an event id is stored twice"
    told: set[str] = set()
    for records, expected in won:
        for stream, version, position, event_id in records:
            assert version == expected[stream] + 1, (
                f"{event_id} expected {stream!r} at version {expected[stream]} and was stored "
                f"as version {version}: the expected version was not enforced"
            )
            r = by_id.get(event_id)
            assert r is not None, f"acknowledged {event_id} ({stream}@v{version}) is not stored"
            assert (r.stream, r.version, r.position) == (stream, version, position), (
                f"{describe(r)} was acknowledged as {stream}@v{version} #{position}"
            )
            told.add(event_id)
    extra = sorted(set(by_id) - told)
    assert not extra, f"stored records no writer was told about: {extra[:5]}"
    heads: dict[str, int] = {}
    for r in stored:
        assert r.version == heads.get(r.stream, 0) + 1, f"{describe(r)}: versions must be dense"
        heads[r.stream] = r.version
    positions = [r.position for r in stored]
    assert positions == sorted(set(positions)), "positions must strictly increase"
    for ids, expected in lost:
        assert not any(i in by_id for i in ids), f"a refused append left records: {ids}"
        assert any(heads.get(s, 0) > v for s, v in expected.items()), (
            f"spurious ConcurrencyError: {ids} expected {expected}, and no stream ever moved past"
        )
