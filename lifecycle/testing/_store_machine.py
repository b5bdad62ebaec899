"""A Hypothesis stateful test of a store against a model: a list of the records it must hold.

Rules append to random streams with right and wrong expected versions, retry acknowledged
appends, re-use stored event ids next to fresh ones, repeat an id inside an append, read, read
everything, wait and take run ids; after every step the store's ``read_all()`` must be the model.
The store lives on an event loop in a worker thread (an anyio blocking portal opened per
example), so the rules stay plain functions and the store may be asyncio-only (SQLite) or not.

    TestMemoryStore = store_state_machine("memory://")      # a unittest.TestCase pytest collects
"""

from __future__ import annotations

import functools
import unittest
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, IdempotencyConflict
from lifecycle._stores import Write

from ._store_support import MakeStore, assert_records, describe, fresh_store, log, store_check

__all__ = ["StoreMachine", "check_store_model", "store_state_machine"]

T = TypeVar("T")

STREAMS = ("run-1", "run-1/a", "run-2")
_DEFAULTS = hypothesis.settings(
    deadline=None,  # a step crosses threads and may touch the disk
    # no explain phase: behind a portal it turns seconds of reporting a failure into minutes
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow],
)


def _show(writes: list[Write]) -> str:
    return "; ".join(
        f"{w.stream}: {len(w.events)} facts, expected {w.expected_version}, ids {list(w.ids())}"
        for w in writes
    )


class StoreMachine(RuleBasedStateMachine):
    """A store against its model. Subclass with ``config = (make_store, backend)``, or let
    :func:`store_state_machine` do it."""

    config: ClassVar[tuple[MakeStore, str]] = ("memory://", "asyncio")

    def __init__(self) -> None:
        super().__init__()
        make_store, backend = self.config
        self._exit = ExitStack()
        try:
            self.portal = self._exit.enter_context(anyio.from_thread.start_blocking_portal(backend))
            fresh = fresh_store(make_store, "model")
            self.store = self._exit.enter_context(self.portal.wrap_async_context_manager(fresh))
        except BaseException:
            self._exit.close()
            raise
        self.log: list[ev.Recorded] = []  # what the store must hold, as it acknowledged it
        self.acked: list[tuple[list[Write], list[ev.Recorded]]] = []
        self.serial = 0
        self.run_id = 0

    def teardown(self) -> None:
        self._exit.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        result: T = self.portal.call(functools.partial(fn, *args, **kwargs))
        return result

    def _version(self, stream: str) -> int:
        return sum(r.stream == stream for r in self.log)

    def _fresh_id(self) -> str:
        self.serial += 1
        return f"m{self.serial}"

    def _rejected(self, writes: list[Write], error: type[ConcurrencyError], why: str) -> None:
        try:
            got = self._call(self.store.append, writes)
        except error as exc:
            if error is ConcurrencyError and isinstance(exc, IdempotencyConflict):
                raise AssertionError(f"append({_show(writes)}): IdempotencyConflict") from exc
            return
        raise AssertionError(
            f"append({_show(writes)}) was accepted ({', '.join(map(describe, got))}); "
            f"{why}: {error.__name__} expected"
        )

    # -- rules ------------------------------------------------------------------------------------

    @rule(data=st.data())
    def append(self, data: st.DataObject) -> None:
        """Fresh event ids on 1–3 distinct streams, expected versions right, wrong or None."""
        streams = data.draw(st.lists(st.sampled_from(STREAMS), min_size=1, max_size=3, unique=True))
        writes = []
        for s in streams:
            v = self._version(s)
            expected = data.draw(st.one_of(st.none(), st.just(v), st.integers(0, v + 2)))
            ids = tuple(self._fresh_id() for _ in range(data.draw(st.integers(0, 3))))
            writes.append(
                Write(
                    stream=s, events=tuple(map(log, ids)), expected_version=expected, event_ids=ids
                )
            )
        stale = [w for w in writes if w.expected_version not in (None, self._version(w.stream))]
        if stale:
            self._rejected(writes, ConcurrencyError, f"{stale[0].stream} is at another version")
            return
        got = self._call(self.store.append, writes)
        want = []
        for w in writes:
            base = self._version(w.stream)
            want += [(w.stream, base + j + 1, i) for j, i in enumerate(w.ids())]
        assert [(r.stream, r.version, r.event_id) for r in got] == want, (
            f"append({_show(writes)}) returned {[describe(r) for r in got]}"
        )
        assert [r.event for r in got] == [log(i) for _, _, i in want], "append changed the facts"
        positions = [r.position for r in self.log[-1:] + got]
        assert positions == sorted(set(positions)), (
            f"append({_show(writes)}) returned positions {positions[1:]} after {positions[:1]}"
        )
        self.log += got
        if got:
            self.acked.append((writes, got))

    @precondition(lambda self: bool(self.acked))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """An acknowledged append, sent again: the original records, nothing written."""
        writes, original = self.acked[data.draw(st.integers(0, len(self.acked) - 1))]
        try:
            got = self._call(self.store.append, writes)
        except ConcurrencyError as exc:
            raise AssertionError(f"a retry of append({_show(writes)}) raised {exc!r}") from exc
        assert_records(got, original, f"a retry of append({_show(writes)})")

    @precondition(lambda self: bool(self.log))
    @rule(data=st.data(), same_write=st.booleans())
    def overlap(self, data: st.DataObject, same_write: bool) -> None:
        """A stored event id next to a fresh one: ``IdempotencyConflict``, nothing written."""
        old = self.log[data.draw(st.integers(0, len(self.log) - 1))]
        fresh, stream = self._fresh_id(), data.draw(st.sampled_from(STREAMS))
        if same_write:
            writes = [
                Write(
                    stream=stream,
                    events=(old.event, log(fresh)),
                    event_ids=(old.event_id, fresh),
                )
            ]
        else:
            writes = [
                Write(stream=old.stream, events=(old.event,), event_ids=(old.event_id,)),
                Write(stream=stream, events=(log(fresh),), event_ids=(fresh,)),
            ]
        self._rejected(writes, IdempotencyConflict, f"{old.event_id} is stored, {fresh} is not")

    @rule(data=st.data(), same_write=st.booleans())
    def duplicate(self, data: st.DataObject, same_write: bool) -> None:
        """One event id twice in one append: ``IdempotencyConflict``, nothing written."""
        i = self._fresh_id()
        a, b = data.draw(st.sampled_from(STREAMS)), data.draw(st.sampled_from(STREAMS))
        if same_write:
            writes = [Write(stream=a, events=(log(i), log(i)), event_ids=(i, i))]
        else:
            writes = [
                Write(stream=a, events=(log(i),), event_ids=(i,)),
                Write(stream=b, events=(log(i),), event_ids=(i,)),
            ]
        self._rejected(writes, IdempotencyConflict, f"{i} appears twice")

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        streams = data.draw(
            st.lists(st.sampled_from((*STREAMS, "never")), min_size=1, max_size=3, unique=True)
        )
        after = data.draw(st.sampled_from([0, *(r.position for r in self.log)]))
        want = [r for r in self.log if r.stream in streams and r.position > after]
        got = self._call(self.store.read, streams, after=after)
        assert_records(got, want, f"read({streams}, after={after})")

    @rule(data=st.data())
    def read_all(self, data: st.DataObject) -> None:
        after = data.draw(st.sampled_from([0, *(r.position for r in self.log)]))
        limit = data.draw(st.none() | st.integers(0, 5))
        want = [r for r in self.log if r.position > after][:limit]
        got = self._call(self.store.read_all, after=after, limit=limit)
        assert_records(got, want, f"read_all(after={after}, limit={limit})")

    @precondition(lambda self: bool(self.log))
    @rule()
    def wait(self) -> None:
        """``wait`` for anything after the last position but one returns the head at once."""
        head = self.log[-1].position
        got = self._call(_wait, self.store.wait, head - 1)
        assert got == head, f"wait({head - 1}) returned {got}; the head is {head}"

    @rule()
    def next_run_id(self) -> None:
        got = self._call(self.store.next_run_id)
        assert got > self.run_id, f"next_run_id() returned {got} after {self.run_id}"
        self.run_id = got

    @invariant()
    def holds_the_model(self) -> None:
        assert_records(self._call(self.store.read_all), self.log, "read_all() against the model")


async def _wait(wait: Callable[[int], Coroutine[Any, Any, int]], after: int) -> int:
    with anyio.fail_after(5):
        return await wait(after)


def _machine(make_store: MakeStore, backend: str) -> type[StoreMachine]:
    return type("StoreModel", (StoreMachine,), {"config": (make_store, backend)})


def store_state_machine(
    make_store: MakeStore,
    *,
    backend: str = "asyncio",
    max_examples: int = 50,
    stateful_step_count: int = 30,
    settings: hypothesis.settings | None = None,
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` (pytest collects it) that runs the store model on fresh stores
    from ``make_store`` (as for ``check_event_store``: a factory or a URL; each example gets a
    new store), on the anyio ``backend`` given. ``settings`` is the parent of the Hypothesis
    settings used (``max_examples`` and ``stateful_step_count`` are applied on top of it).

    Hypothesis' *explain* phase is left out: with a store behind a portal it multiplies the
    time to report a failure (minutes instead of seconds) and adds little to the shrunk steps.
    """
    case = _machine(make_store, backend).TestCase
    case.settings = hypothesis.settings(
        settings if settings is not None else _DEFAULTS,
        max_examples=max_examples,
        stateful_step_count=stateful_step_count,
    )
    return case


def _backend() -> str:
    try:
        import sniffio  # noqa: PLC0415  (comes with trio; without it, only asyncio is possible)
    except ImportError:
        return "asyncio"
    return sniffio.current_async_library()


_NOT_LISTED: list[Any] = []


@store_check("model", _NOT_LISTED)
async def check_store_model(make_store: MakeStore) -> None:
    """The store model, 25 examples of up to 20 steps, on the current anyio backend (in a
    worker thread, with its own event loop); the Hypothesis example database is not used."""
    machine = _machine(make_store, _backend())
    quick = hypothesis.settings(
        _DEFAULTS,
        max_examples=25,
        stateful_step_count=20,
        database=None,
        report_multiple_bugs=False,
    )
    await anyio.to_thread.run_sync(
        functools.partial(run_state_machine_as_test, machine, settings=quick)
    )
