"""Store checks of the edges of every argument: one answer per domain, the same in every store
(the rules are in :mod:`lifecycle._stores._base`), and no fact a store could not read back.

These are what two stores are most likely to disagree on — a negative limit, a stream named twice,
an expected version below zero, a wait on a position already past — and what a caller cannot
learn from the happy path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, InvalidFact
from lifecycle._stores import RunStore, RunSummary, Write

from ._store_support import (
    T0,
    MakeStore,
    StoreCheck,
    assert_records,
    deadline,
    fresh_store,
    log,
    store_check,
    summary,
)

__all__ = ["ARGUMENT_CHECKS"]

ARGUMENT_CHECKS: list[tuple[str, StoreCheck]] = []
"""The checks of what every argument domain gives: reads, limits, waits, bad writes and facts."""


def _check(name: str) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    return store_check(name, ARGUMENT_CHECKS)


class _Foreign(ev.Fact, frozen=True, kw_only=True, tag=True):
    """A fact of someone else's vocabulary: no store can decode it back."""


def _bad_facts() -> list[tuple[Any, str, str]]:
    """``(fact, its type name, the field named)``: facts whose fields do not have their declared
    types (msgspec does not check them when a Struct is built), or that cannot be encoded."""
    return [
        (ev.LogRecorded(text=b"bytes"), "LogRecorded", "text"),  # type: ignore[arg-type]
        (ev.LogRecorded(stream="nowhere"), "LogRecorded", "stream"),  # type: ignore[arg-type]
        (ev.ExecutionFailed(exit_code="1"), "ExecutionFailed", "exit_code"),  # type: ignore[arg-type]
        (ev.OutOfMemory(limit_bytes=True), "OutOfMemory", "limit_bytes"),
        (ev.Requested(dialect="x", params={1: "int key"}), "Requested", "params"),  # type: ignore[dict-item]
        (ev.Requested(dialect="x", containers=("a", 2)), "Requested", "containers"),  # type: ignore[arg-type]
        (ev.ScheduleArmed(due_at="tomorrow"), "ScheduleArmed", "due_at"),  # type: ignore[arg-type]
        (ev.Requested(dialect="x", params={"big": 2**70}), "Requested", ""),
        (ev.ExecutionFailed(error=object()), "ExecutionFailed", ""),  # type: ignore[arg-type]
        (ev.LogRecorded(text="\ud800"), "LogRecorded", ""),
        (_Foreign(), "_Foreign", "type"),
        ("not a fact", "str", ""),
    ]


async def _refused(
    store: RunStore,
    writes: Sequence[Write],
    error: type[Exception],
    what: str,
    summaries: Sequence[RunSummary] = (),
) -> Exception:
    """The append raises ``error`` and leaves the log (and the read model) as it was."""
    before = await store.read_all()
    rows = await store.list_runs()
    try:
        got = await store.append(writes, summaries=summaries)
    except error as exc:
        caught: Exception = exc
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__} ({exc}); {error.__name__} was expected"
        ) from exc
    else:
        raise AssertionError(f"{what}: accepted ({len(got)} records); {error.__name__} is due")
    assert_records(await store.read_all(), before, f"{what}: a refused append wrote to the log")
    assert await store.list_runs() == rows, f"{what}: a refused append changed the read model"
    return caught


async def _raises(call: Awaitable[Any], error: type[Exception], what: str) -> None:
    try:
        got = await call
    except error:
        return
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__} ({exc}); {error.__name__} was expected"
        ) from exc
    raise AssertionError(f"{what}: returned {got!r}; it must raise {error.__name__}")


@_check("invalid_facts")
async def check_invalid_facts(make_store: MakeStore) -> None:
    """A fact whose fields do not have their declared types is refused with ``InvalidFact``
    naming the fact and the field — beside good writes, nothing written — and the store still
    reads whole."""
    async with fresh_store(make_store, "facts") as store:
        await store.append([Write(stream="ok", events=(log("before"),))])
        for fact, name, field in _bad_facts():
            what = f"append({name} with a wrong field {field or '(whole fact)'})"
            writes = [
                Write(stream="ok", events=(log("beside"),)),
                Write(stream="bad", events=(fact,)),
            ]
            caught = await _refused(store, writes, InvalidFact, what)
            assert isinstance(caught, InvalidFact)
            assert (caught.fact, caught.field) == (name, field), (
                f"{what}: InvalidFact named {caught.fact}.{caught.field}, not {name}.{field}"
            )
            assert caught.stream == "bad", f"{what}: InvalidFact named stream {caught.stream!r}"
        got = await store.read_all()
        assert [r.event for r in got] == [log("before")], "the log is not whole after refusals"


@_check("read_arguments")
async def check_read_arguments(make_store: MakeStore) -> None:
    """``read``: no streams, unknown ones, one named twice, ``after`` ≤ 0 or past the head, and
    a lone ``str`` (``TypeError``: not the streams named by its letters)."""
    async with fresh_store(make_store, "reads") as store:
        await store.append(
            [
                Write(stream="a", events=(log("a1"), log("a2"))),
                Write(stream="b", events=(log("b"),)),
            ]
        )
        a = [1, 2]
        cases: list[tuple[str, Sequence[str], int, list[int]]] = [
            ("read([])", [], 0, []),
            ("read(['zz'])", ["zz"], 0, []),
            ("read(['a', 'a'])", ["a", "a"], 0, a),
            ("read(['b', 'a', 'b'])", ["b", "a", "b"], 0, [1, 2, 3]),
            ("read(['a'], after=-5)", ["a"], -5, a),
            ("read(['a'], after=1)", ["a"], 1, [2]),
            ("read(['a'], after=3)", ["a"], 3, []),
            ("read(['a'], after=99)", ["a"], 99, []),
        ]
        for what, streams, after, want in cases:
            got = [r.position for r in await store.read(streams, after=after)]
            assert got == want, f"{what} gave positions {got}, {want} are due"
        await _raises(store.read("ab"), TypeError, "read('ab') (one str)")


@_check("limits")
async def check_limits(make_store: MakeStore) -> None:
    """``read_all`` and ``list_runs``: ``limit=None`` is everything, ``0`` nothing, a negative one
    ``ValueError``; ``after`` ≤ 0 reads from the start; bounds the wrong way round, and names,
    states or dialects no run has, give ``[]``."""
    async with fresh_store(make_store, "limits") as store:
        rows = [summary(r, name=f"n{r}", created=T0) for r in (1, 2, 3)]
        writes = [Write(stream=f"run-{r}", events=(log(str(r)),)) for r in (1, 2, 3)]
        await store.append(writes, summaries=rows)
        cases: list[tuple[str, int, int | None, list[int]]] = [
            ("read_all()", 0, None, [1, 2, 3]),
            ("read_all(limit=0)", 0, 0, []),
            ("read_all(limit=2)", 0, 2, [1, 2]),
            ("read_all(after=-3)", -3, None, [1, 2, 3]),
            ("read_all(after=-3, limit=2)", -3, 2, [1, 2]),
            ("read_all(after=2, limit=5)", 2, 5, [3]),
            ("read_all(after=3)", 3, None, []),
            ("read_all(after=50, limit=1)", 50, 1, []),
        ]
        for what, after, limit, want in cases:
            got = [r.position for r in await store.read_all(after=after, limit=limit)]
            assert got == want, f"{what} gave positions {got}, {want} are due"
        await _raises(store.read_all(limit=-1), ValueError, "read_all(limit=-1)")
        listed: list[tuple[str, dict[str, Any], list[int]]] = [
            ("list_runs()", {}, [3, 2, 1]),
            ("list_runs(limit=0)", {"limit": 0}, []),
            ("list_runs(limit=2)", {"limit": 2}, [3, 2]),
            ("list_runs(limit=9)", {"limit": 9}, [3, 2, 1]),
            ("list_runs(name='none')", {"name": "none"}, []),
            ("list_runs(state='Nowhere')", {"state": "Nowhere"}, []),
            ("list_runs(dialect='none')", {"dialect": "none"}, []),
            (
                "list_runs(start_time=T0, end_time=T0)",
                {"start_time": T0, "end_time": T0},
                [3, 2, 1],
            ),
            (
                "list_runs(start_time > end_time)",
                {"start_time": T0, "end_time": T0.replace(year=T0.year - 1)},
                [],
            ),
        ]
        for what, kwargs, want in listed:
            got = [s.run_id for s in await store.list_runs(**kwargs)]
            assert got == want, f"{what} gave runs {got}, {want} are due"
        await _raises(store.list_runs(limit=-1), ValueError, "list_runs(limit=-1)")


@_check("wait_past")
async def check_wait_past(make_store: MakeStore) -> None:
    """``wait(after)`` with ``after`` below the head — negative included — returns the head at
    once."""
    async with fresh_store(make_store, "waits") as store:
        await store.append([Write(stream="w", events=(log("1"), log("2")))])
        for after in (-1, 0, 1):
            with deadline(5, f"wait({after}) with the head at 2"):
                head = await store.wait(after)
            assert head == 2, f"wait({after}) returned {head}; the head, 2, is due"


@_check("write_arguments")
async def check_write_arguments(make_store: MakeStore) -> None:
    """A ``Write`` with an empty stream name, an expected version that is negative or not an
    int, or an event id that is not a ``str``, or a ``RunSummary`` whose fields do not have their
    types, is refused and writes nothing; an append may name
    a stream in several writes, each expected version checked against the version the stream
    had before the append."""
    async with fresh_store(make_store, "writes") as store:
        await store.append([Write(stream="a", events=(log("a1"),))])
        beside = Write(stream="a", events=(log("beside"),))
        await _refused(
            store, [beside, Write(stream="", events=(log("x"),))], ValueError, "stream ''"
        )
        for expected in (-1, True, 1.0):
            bad = Write(stream="a", events=(log("x"),), expected_version=expected)  # type: ignore[arg-type]
            await _refused(store, [bad], ValueError, f"expected_version={expected!r}")
        ids = Write(stream="b", events=(log("x"),), event_ids=(7,))  # type: ignore[arg-type]
        await _refused(store, [beside, ids], TypeError, "event_ids=(7,)")
        row = summary(1, name="n", created=T0, state=3)  # type: ignore[arg-type]
        await _refused(store, [beside], TypeError, "a RunSummary with an int state", [row])
        await _refused(
            store,
            [Write(stream="a", events=(log("x"),), expected_version=5)],
            ConcurrencyError,
            "expected_version=5 on a stream at 1",
        )
        got = await store.append(
            [
                Write(stream="a", events=(log("a2"),), expected_version=1),
                Write(stream="b", events=(log("b1"),)),
                Write(stream="a", events=(log("a3"),), expected_version=1),
            ]
        )
        said = [(r.stream, r.version) for r in got]
        assert said == [("a", 2), ("b", 1), ("a", 3)], (
            f"a stream in two writes of one append, both expecting the version before it: {said}"
        )
