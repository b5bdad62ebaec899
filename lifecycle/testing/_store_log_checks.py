"""Store checks of the reading side: positions in commit order, ``read``/``read_all`` with
``after`` and ``limit``, dense versions, facts and times read back as written, ``wait``, and
tailing readers that must never skip an event while tasks write.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from lifecycle import events as ev
from lifecycle._stores import Write

from ._store_support import (
    T0,
    MakeStore,
    StoreCheck,
    assert_dense,
    assert_records,
    deadline,
    describe,
    fresh_store,
    log,
    store_check,
    versions,
)

__all__ = ["LOG_CHECKS"]

LOG_CHECKS: list[tuple[str, StoreCheck]] = []
"""The checks of what a store reads back: order, positions, versions, facts, waiting."""


def _check(name: str) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    return store_check(name, LOG_CHECKS)


# -- ordering and versions ------------------------------------------------------------------------


@_check("ordering")
async def check_ordering(make_store: MakeStore) -> None:
    """Positions increase in commit order; ``read_all`` and ``read`` return records in that
    order, each once (``read`` of a stream named twice too); ``after`` and ``limit`` select
    exactly what they say."""
    async with fresh_store(make_store, "ordering") as store:
        first = await store.append(
            [
                Write(stream="a", events=(log("a1"), log("a2"))),
                Write(stream="b", events=(log("b1"),)),
            ]
        )
        got = [(r.stream, r.event) for r in first]
        want = [("a", log("a1")), ("a", log("a2")), ("b", log("b1"))]
        assert got == want, f"append must return one record per fact, in the order given: {got}"
        second = await store.append(
            [Write(stream="b", events=(log("b2"),)), Write(stream="a", events=(log("a3"),))]
        )
        third = await store.append([Write(stream="c", events=(log("c1"), log("c2"), log("c3")))])
        records = first + second + third
        assert_dense(records, "the records append returned")
        assert records[0].position > 0, (
            f"positions start above 0 (read_all's default after): {records[0]}"
        )
        assert_records(await store.read_all(), records, "read_all()")
        for i in range(len(records) + 1):
            after = records[i - 1].position if i else 0
            assert_records(
                await store.read_all(after=after), records[i:], f"read_all(after={after})"
            )
        middle = records[2].position
        for limit in (0, 1, 2, len(records) + 5):
            assert_records(
                await store.read_all(limit=limit), records[:limit], f"read_all(limit={limit})"
            )
            assert_records(
                await store.read_all(after=middle, limit=limit),
                records[3 : 3 + limit],
                f"read_all(after={middle}, limit={limit})",
            )
        for streams in (
            ["a"],
            ["b"],
            ["b", "a"],
            ["c", "a", "b"],
            ["missing"],
            [],
            ["a", "a"],  # a stream named twice: its records once
            ["b", "a", "b", "missing", "missing"],
        ):
            want_records = [r for r in records if r.stream in streams]
            assert_records(await store.read(streams), want_records, f"read({streams})")
            assert_records(
                await store.read(streams, after=middle),
                [r for r in want_records if r.position > middle],
                f"read({streams}, after={middle})",
            )


@_check("dense_versions")
async def check_dense_versions(make_store: MakeStore) -> None:
    """Versions are 1..n per stream, also when one append writes a stream twice; event ids the
    store makes up are unique."""
    async with fresh_store(make_store, "dense") as store:
        got = await store.append(
            [
                Write(stream="x", events=(log("x1"), log("x2"))),
                Write(stream="y", events=(log("y1"),)),
            ]
        )
        got += await store.append(
            [
                Write(stream="x", events=(log("x3"),)),
                Write(stream="x", events=(log("x4"), log("x5"))),
            ]
        )
        got += await store.append([Write(stream="y", events=(log("y2"), log("y3"), log("y4")))])
        for stream, n in (("x", 5), ("y", 4)):
            assert versions(got, stream) == list(range(1, n + 1)), (
                f"append gave {stream!r} versions {versions(got, stream)}; 1..{n} expected"
            )
            texts = [r.event.text for r in await store.read([stream])]  # type: ignore[union-attr]
            assert texts == [f"{stream}{i}" for i in range(1, n + 1)], (
                f"read([{stream!r}]) returned the facts in the wrong order: {texts}"
            )
        assert_dense(await store.read_all(), "read_all()")


# -- what the records hold ------------------------------------------------------------------------


def _sample_facts() -> list[ev.Fact]:
    """One of every fact, with fields that exercise the encoding (unicode, nesting, datetimes)."""
    samples: list[ev.Fact] = [
        ev.Requested(
            dialect="qualytics",
            operation="profile",
            name="nightly — ünïcode",
            containers=("orders", "customers"),
            params={"n": 3, "f": 0.5, "nested": {"xs": [1, 2, None], "s": "t"}, "b": True},
            mode="rerun",
            original_run_id=3,
            root_run_id=1,
            job_version=2,
            build=True,
        ),
        ev.BuildStarted(image="img:1"),
        ev.BuildSucceeded(image="img:1", version=4),
        ev.BuildFailed(reason="no such package"),
        ev.ScheduleArmed(
            due_at=T0 + _dt.timedelta(days=1, microseconds=123), run_id=3, skipped=(T0,)
        ),
        ev.ScheduleExpired(end=T0),
        ev.ResourcesRequested(tier="gpu"),
        ev.ResourcesAssigned(node="node-7"),
        ev.ImagePullStarted(image="img:1"),
        ev.LogRecorded(level="warning", stream="stderr", text="line one\nline two\t✓ " * 500),
        ev.ResultStored(key="results/1/orders", codec="pickle", size=12, sha256="ab" * 32),
        ev.ExecutionSucceeded(cached_from=7),
        ev.ExecutionFailed(error="ValueError: bad", exit_code=-9, traceback="Traceback…"),
        ev.OutOfMemory(limit_bytes=2**40),
        ev.InfrastructureFailed(reason="worker_lost"),
        ev.StopRequested(by="alice"),
        ev.Stopped(reason="upstream_failed"),
    ]
    covered = {type(f) for f in samples}
    for cls in ev.fact_types().values():
        if cls not in covered:
            try:
                samples.append(cls())
            except TypeError:  # a new fact with required fields: add a sample above
                continue
    return samples


@_check("facts_round_trip")
async def check_facts_round_trip(make_store: MakeStore) -> None:
    """Every kind of fact reads back equal; ``recorded_at`` is UTC, ``at`` when given, and
    otherwise the time of the append."""
    facts = _sample_facts()
    async with fresh_store(make_store, "facts") as store:
        at = T0 + _dt.timedelta(microseconds=250_000)
        half = len(facts) // 2
        got = await store.append([Write(stream="run-1", events=tuple(facts[:half]))], at=at)
        start = _dt.datetime.now(_dt.UTC)
        got += await store.append([Write(stream="run-1/c", events=tuple(facts[half:]))])
        end = _dt.datetime.now(_dt.UTC)
        stored = await store.read_all()
        assert_records(stored, got, "read_all() after appending every kind of fact")
        for record, fact in zip(stored, facts, strict=True):
            assert record.event == fact, f"{type(fact).__name__} read back as {record.event!r}"
        for record in stored[:half]:
            assert abs(record.recorded_at - at) <= _dt.timedelta(milliseconds=1), (
                f"recorded_at must be the given at={at}: {record.recorded_at}"
            )
        slack = _dt.timedelta(seconds=1)
        for record in stored[half:]:
            assert start - slack <= record.recorded_at <= end + slack, (
                f"recorded_at {record.recorded_at} is not the time of the append ({start})"
            )


# -- waiting and tailing --------------------------------------------------------------------------


@_check("wait")
async def check_wait(make_store: MakeStore) -> None:
    """``wait(after)`` returns the head at once when it is past ``after``, blocks (until
    cancelled) while it is not, and wakes every waiter promptly after an append."""
    async with fresh_store(make_store, "wait") as store:
        with anyio.move_on_after(0.2) as scope:
            got = await store.wait(0)
        assert scope.cancelled_caught, f"wait(0) on an empty store returned {got}: it must block"
        (first,) = await store.append([Write(stream="w", events=(log("1"),))])
        with deadline(3, "wait(0) with a record stored"):
            head = await store.wait(0)
        assert head == first.position, f"wait(0) returned {head}; the head is {first.position}"
        with anyio.move_on_after(0.2) as scope:
            got = await store.wait(head)
        assert scope.cancelled_caught, f"wait({head}) returned {got} with nothing new"

        woken: list[int] = []

        async def waiter(*, task_status: TaskStatus[None]) -> None:
            task_status.started()
            woken.append(await store.wait(head))

        with deadline(3, "three wait(head) calls after another task appended"):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    await tg.start(waiter)
                await anyio.sleep(0.05)  # let them block inside wait()
                (new,) = await store.append([Write(stream="w", events=(log("2"),))])
        assert woken == [new.position] * 3, f"waiters got {woken}; the head is {new.position}"


@_check("tailing_reader")
async def check_tailing_reader(make_store: MakeStore) -> None:
    """Readers that loop ``read_all(after=last seen)`` then ``wait`` while many tasks append
    never see a gap or a reordering: what they saw is, at the end, exactly ``read_all()``."""
    writers, appends = 10, 15
    async with fresh_store(make_store, "tail") as store:
        finished = anyio.Event()
        seen: dict[int | None, list[ev.Recorded]] = {None: [], 7: []}
        waiting: set[anyio.CancelScope] = set()

        async def reader(limit: int | None) -> None:
            mine, position = seen[limit], 0
            while True:
                batch = await store.read_all(after=position, limit=limit)
                for record in batch:
                    assert record.position > position, (
                        f"a tailing reader at {position} was handed {describe(record)}"
                    )
                    position = record.position
                mine.extend(batch)
                if batch:
                    continue
                if finished.is_set():
                    return
                await anyio.lowlevel.checkpoint()  # never spin: a broken wait may not block
                with anyio.move_on_after(5) as scope:  # wait is checked on its own: no hang here
                    waiting.add(scope)
                    if not finished.is_set():  # else the writers are done: read once more
                        await store.wait(position)
                waiting.discard(scope)

        async def writer(w: int) -> None:
            rng = random.Random(w)
            for i in range(appends):
                writes = [
                    Write(
                        stream=f"tail-{w}",
                        events=tuple(log(f"{w}-{i}-{j}") for j in range(rng.randint(1, 3))),
                    )
                ]
                if rng.random() < 0.3:
                    writes.append(Write(stream="tail-shared", events=(log(f"{w}-{i}"),)))
                await store.append(writes)
                await anyio.lowlevel.checkpoint()

        with deadline(60, f"two tailing readers and {writers} writers"):
            async with anyio.create_task_group() as readers:
                for limit in seen:
                    readers.start_soon(reader, limit)
                async with anyio.create_task_group() as tg:
                    for w in range(writers):
                        tg.start_soon(writer, w)
                finished.set()
                for scope in waiting:
                    scope.cancel()
        stored = await store.read_all()
        assert_dense(stored, "read_all() after the writers")
        for limit, records in seen.items():
            assert_records(records, stored, f"what a tailing reader (limit={limit}) saw")
