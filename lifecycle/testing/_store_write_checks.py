"""Store checks of the writing side: expected versions (also between racing tasks),
idempotent retries by event id, all-or-nothing batches across streams and summaries, and
writes without facts that only check a version.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, IdempotencyConflict
from lifecycle._stores import Write

from ._store_support import (
    T0,
    Acknowledged,
    MakeStore,
    StoreCheck,
    assert_records,
    deadline,
    describe,
    fresh_store,
    log,
    reconcile_race,
    rejects,
    store_check,
    summary,
    versions,
)

__all__ = ["WRITE_CHECKS"]

WRITE_CHECKS: list[tuple[str, StoreCheck]] = []
"""The checks of what an append guarantees: expected versions, idempotency, atomicity."""


def _check(name: str) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    return store_check(name, WRITE_CHECKS)


# -- optimistic concurrency -----------------------------------------------------------------------


@_check("optimistic_concurrency")
async def check_optimistic_concurrency(make_store: MakeStore) -> None:
    """``expected_version`` None (any), 0 (new stream) or n (at n) is enforced; the loser gets
    ``ConcurrencyError`` naming the stream and nothing is written — also when racing tasks all
    expect the same version."""
    async with fresh_store(make_store, "occ") as store:
        s = "run-1"
        first = await store.append([Write(stream=s, events=(log("1"),), expected_version=0)])
        assert first[0].version == 1, f"first record of a new stream: {describe(first[0])}"
        exc = await rejects(
            store, [Write(stream=s, events=(log("x"),), expected_version=0)], "expected 0, exists"
        )
        assert s in str(exc), f"the ConcurrencyError message must name the stream: {exc}"
        await store.append([Write(stream=s, events=(log("2"),), expected_version=1)])
        await rejects(store, [Write(stream=s, events=(log("x"),), expected_version=1)], "stale 1")
        await rejects(
            store, [Write(stream=s, events=(log("x"),), expected_version=5)], "expected ahead (5)"
        )
        await store.append([Write(stream=s, events=(log("3"),), expected_version=None)])
        await rejects(
            store,
            [Write(stream="run-2", events=(log("x"),), expected_version=1)],
            "expected 1 on a stream that does not exist",
        )
        await store.append([Write(stream="run-2", events=(log("1"),), expected_version=0)])
        assert versions(await store.read([s]), s) == [1, 2, 3], "the rejected appends left a hole"

        for round_ in range(4):
            version = len(await store.read([s]))
            outcome: dict[int, list[ev.Recorded] | BaseException] = {}

            async def contender(
                t: int,
                version: int = version,
                round_: int = round_,
                outcome: dict[int, list[ev.Recorded] | BaseException] = outcome,
            ) -> None:
                write = Write(stream=s, events=(log(f"r{round_}-{t}"),), expected_version=version)
                try:
                    outcome[t] = await store.append([write])
                except ConcurrencyError as exc:
                    outcome[t] = exc

            with deadline(30, "8 tasks appending with the same expected version"):
                async with anyio.create_task_group() as tg:
                    for t in range(8):
                        tg.start_soon(contender, t)
            winners = [t for t, o in outcome.items() if isinstance(o, list)]
            assert len(winners) == 1, (
                f"8 tasks appended to {s!r} expecting version {version}: {len(winners)} succeeded "
                "where exactly one must"
            )
            for t, o in outcome.items():
                assert t in winners or not isinstance(o, IdempotencyConflict), f"task {t}: {o!r}"
            stream = await store.read([s])
            assert [r.event for r in stream[version:]] == [log(f"r{round_}-{winners[0]}")], (
                f"after the race {s!r} holds {[describe(r) for r in stream[version:]]}"
            )


@_check("concurrent_writers")
async def check_concurrent_writers(make_store: MakeStore) -> None:
    """Tasks race on shared streams (one or two per append) with the versions they read: every
    winner's records are stored as acknowledged, no loser's, versions stay dense, and every
    ``ConcurrencyError`` was a real conflict."""
    streams, tasks, attempts = ("s0", "s1", "s2"), 8, 12
    won: list[tuple[list[Acknowledged], dict[str, int]]] = []
    lost: list[tuple[list[str], dict[str, int]]] = []
    async with fresh_store(make_store, "writers") as store:

        async def writer(t: int) -> None:
            rng = random.Random(t)
            for i in range(attempts):
                writes = []
                for s in rng.sample(streams, rng.choice((1, 1, 2))):
                    version = len(await store.read([s]))
                    eid = f"t{t}-{i}-{s}"
                    writes.append(
                        Write(
                            stream=s, events=(log(eid),), expected_version=version, event_ids=(eid,)
                        )
                    )
                await anyio.lowlevel.checkpoint()  # let others move between our read and append
                expected = {w.stream: w.expected_version or 0 for w in writes}
                try:
                    records = await store.append(writes)
                except IdempotencyConflict:
                    raise
                except ConcurrencyError:
                    lost.append(([w.ids()[0] for w in writes], expected))
                else:
                    acked = [(r.stream, r.version, r.position, r.event_id) for r in records]
                    won.append((acked, expected))

        with deadline(60, f"{tasks} writer tasks"):
            async with anyio.create_task_group() as tg:
                for t in range(tasks):
                    tg.start_soon(writer, t)
        reconcile_race(await store.read_all(), won, lost, tasks * attempts)


# -- idempotency and atomicity --------------------------------------------------------------------


@_check("idempotency")
async def check_idempotency(make_store: MakeStore) -> None:
    """Re-sending an acknowledged append (same event ids) returns the original records and
    writes nothing, even when its expected version is stale by then and when the copies race;
    a partial overlap, or one id twice in an append, is an ``IdempotencyConflict``."""
    async with fresh_store(make_store, "idem") as store:
        batch = [
            Write(stream="s", events=(log("s1"), log("s2")), event_ids=("e1", "e2")),
            Write(stream="t", events=(log("t1"),), event_ids=("e3",)),
        ]
        original = await store.append(batch)
        assert [r.event_id for r in original] == ["e1", "e2", "e3"], "the given event ids are kept"
        await store.append([Write(stream="s", events=(log("s3"),))])
        log_before = await store.read_all()
        assert_records(await store.append(batch), original, "re-sent append")
        assert_records(await store.read_all(), log_before, "a re-sent append wrote to the log")

        guarded = [Write(stream="u", events=(log("u1"),), expected_version=0, event_ids=("g1",))]
        original = await store.append(guarded)
        await store.append([Write(stream="u", events=(log("u2"),), expected_version=1)])
        log_before = await store.read_all()
        try:
            again = await store.append(guarded)
        except ConcurrencyError as exc:
            raise AssertionError(
                "re-sending an acknowledged append whose expected version is stale by now must "
                f"return the original records (its acknowledgement may have been lost): {exc!r}"
            ) from exc
        assert_records(again, original, "re-sent append with a stale expected version")
        assert_records(await store.read_all(), log_before, "the re-sent append wrote to the log")

        overlap = "partial overlap"
        await rejects(
            store,
            [Write(stream="s", events=(log("s1"), log("new")), event_ids=("e1", "n1"))],
            f"{overlap} in one write",
            error=IdempotencyConflict,
        )
        await rejects(
            store,
            [
                Write(stream="s", events=(log("s1"),), event_ids=("e1",)),
                Write(stream="v", events=(log("v1"),), event_ids=("n2",)),
            ],
            f"{overlap} across writes",
            error=IdempotencyConflict,
        )
        await rejects(
            store,
            [Write(stream="w", events=(log("w1"), log("w2")), event_ids=("d1", "d1"))],
            "one event id twice in a write",
            error=IdempotencyConflict,
        )
        await rejects(
            store,
            [
                Write(stream="w", events=(log("w1"),), event_ids=("d2",)),
                Write(stream="x", events=(log("x1"),), event_ids=("d2",)),
            ],
            "one event id in two writes",
            error=IdempotencyConflict,
        )
        rejected_ids = {"n1", "n2", "d1", "d2"}
        assert not rejected_ids & {r.event_id for r in await store.read_all()}, (
            "rejected ids stored"
        )

        for expected in (None, 0):
            stream = f"copies-{expected}"
            ids = (f"k{expected}-1", f"k{expected}-2")
            copies = [
                Write(
                    stream=stream,
                    events=(log("c1"), log("c2")),
                    event_ids=ids,
                    expected_version=expected,
                )
            ]
            results: list[list[ev.Recorded]] = []

            async def send(
                copies: list[Write] = copies, results: list[list[ev.Recorded]] = results
            ) -> None:
                results.append(await store.append(copies))

            with deadline(30, "six copies of one append sent at once"):
                async with anyio.create_task_group() as tg:
                    for _ in range(6):
                        tg.start_soon(send)
            stored = await store.read([stream])
            assert len(stored) == 2, (
                f"six copies of one append (expected_version={expected}) sent at once stored "
                f"{len(stored)} records; exactly one copy must be written"
            )
            for result in results:
                assert_records(result, stored, f"a racing copy (expected_version={expected}) got")


@_check("atomic_batches")
async def check_atomic_batches(make_store: MakeStore) -> None:
    """An append whose any write fails its expected version writes nothing — in no stream, no
    summary — and uses up no event id; failing and succeeding appends sent at once do not
    affect each other."""
    async with fresh_store(make_store, "atomic") as store:
        await store.append(
            [Write(stream="a", events=(log("a1"),)), Write(stream="b", events=(log("b1"),))]
        )
        before = summary(1, name="atomic", created=T0)
        await store.append([Write(stream="c", events=(log("c1"),))], summaries=[before])
        after = summary(1, name="atomic", created=T0, state="Running")
        for order in ((0, 1, 2), (1, 0, 2), (0, 2, 1)):
            writes = [
                Write(
                    stream="a",
                    events=(log("a2"), log("a3")),
                    expected_version=1,
                    event_ids=("i1", "i2"),
                ),
                Write(
                    stream="b", events=(log("b2"),), expected_version=0, event_ids=("i3",)
                ),  # wrong
                Write(stream="new", events=(log("n1"),), event_ids=("i4",)),
            ]
            await rejects(
                store,
                [writes[i] for i in order],
                f"a batch with one stale write (order {order})",
                summaries=[after],
            )
        assert await store.read(["new"]) == [], "a rejected batch created a stream"
        runs = await store.list_runs()
        assert runs == [before], f"a rejected append changed the read model: {runs}"
        fixed = [
            Write(
                stream="a",
                events=(log("a2"), log("a3")),
                expected_version=1,
                event_ids=("i1", "i2"),
            ),
            Write(stream="b", events=(log("b2"),), expected_version=1, event_ids=("i3",)),
            Write(stream="new", events=(log("n1"),), event_ids=("i4",)),
        ]
        got = await store.append(fixed, summaries=[after])
        assert [r.event_id for r in got] == ["i1", "i2", "i3", "i4"], (
            f"the ids of a rejected append must stay free: {[describe(r) for r in got]}"
        )
        assert await store.list_runs() == [after], "the summary of an append must be upserted"

        outcome: dict[int, bool] = {}

        async def mixed(t: int) -> None:
            writes = [Write(stream=f"m{t}", events=(log(f"m{t}"),), expected_version=0)]
            if t % 2:
                writes.append(Write(stream="a", events=(), expected_version=99))
            try:
                await store.append(writes)
            except ConcurrencyError:
                outcome[t] = False
            else:
                outcome[t] = True

        with deadline(30, "twenty appends, half of them failing, sent at once"):
            async with anyio.create_task_group() as tg:
                for t in range(20):
                    tg.start_soon(mixed, t)
        for t in range(20):
            stored = await store.read([f"m{t}"])
            want = t % 2 == 0
            assert outcome[t] is want, f"append {t} {'failed' if want else 'succeeded'} wrongly"
            assert len(stored) == int(want), (
                f"append {t} ({'ok' if want else 'rejected'}) left {len(stored)} records on m{t}: "
                "appends committed together must succeed or fail one by one"
            )


@_check("version_checks")
async def check_version_checks(make_store: MakeStore) -> None:
    """A write without events only checks its expected version: it stores nothing, and a
    mismatch rejects the whole append."""
    async with fresh_store(make_store, "checks") as store:
        got = await store.append([Write(stream="a", expected_version=0)])
        assert got == [], f"an empty write returned records: {got}"
        assert await store.append([]) == [], "an append of nothing returns nothing"
        assert await store.read_all() == [], "an empty write stored something"
        await store.append([Write(stream="a", events=(log("a1"), log("a2")))])
        got = await store.append(
            [Write(stream="b", events=(log("b1"),)), Write(stream="a", expected_version=2)]
        )
        assert [r.stream for r in got] == ["b"], (
            f"only b's fact is stored: {[describe(r) for r in got]}"
        )
        await rejects(
            store,
            [Write(stream="b", events=(log("b2"),)), Write(stream="a", expected_version=1)],
            "a stale empty write beside a real one",
        )
        await rejects(store, [Write(stream="a", expected_version=0)], "an empty write expecting 0")
        await rejects(
            store, [Write(stream="z", expected_version=3)], "an empty write on a missing stream"
        )
        assert versions(await store.read_all(), "a") == [1, 2], "empty writes changed versions"
