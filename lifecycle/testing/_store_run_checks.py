"""Store checks of what :class:`~lifecycle._stores.RunStore` adds to an event log: the
``runs`` read model (upserted with appends, filtered — naive times as UTC —, replaced, rebuilt
atomically while others append), blobs, leases and run ids.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable, Sequence
from itertools import pairwise
from typing import Any

import anyio
import anyio.lowlevel

from lifecycle import events as ev
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

__all__ = ["RUN_CHECKS"]

RUN_CHECKS: list[tuple[str, StoreCheck]] = []
"""The checks of the run-service layer: read model, blobs, leases, run ids."""


def _check(name: str) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    return store_check(name, RUN_CHECKS)


# -- the read model, blobs, leases, run ids -------------------------------------------------------


def _assert_runs(rows: list[RunSummary], expected: list[RunSummary], call: str) -> None:
    ids, want = [r.run_id for r in rows], [r.run_id for r in expected]
    assert ids == want, f"{call} returned runs {ids}; expected {want} (newest first)"
    for row, exp in zip(rows, expected, strict=True):
        assert row == exp, f"{call}: run {row.run_id} reads back as {row!r}, expected {exp!r}"


@_check("summaries")
async def check_summaries(make_store: MakeStore) -> None:
    """Summaries are upserted with their append and listed newest first, filtered by name,
    state, dialect, a creation-time window and a limit."""
    hour = _dt.timedelta(hours=1)
    s1 = summary(1, name="nightly", created=T0 + hour)
    s2 = summary(2, name="nightly", created=T0 + 2 * hour, dialect="domino", state="Running")
    s3 = summary(
        3,
        name="hourly",
        created=T0 + 3 * hour,
        state="Success",
        outcome="succeeded",
        terminal=True,
        warning=True,
        started_at=T0 + 3 * hour + _dt.timedelta(seconds=1),
        ended_at=T0 + 4 * hour,
        original_run_id=1,
        root_run_id=1,
        job_version=2,
        reason="done",
    )
    async with fresh_store(make_store, "summaries") as store:
        for s in (s1, s2, s3):
            fact = ev.Requested(dialect=s.dialect, name=s.name)
            await store.append([Write(stream=f"run-{s.run_id}", events=(fact,))], summaries=[s])
        half = _dt.timedelta(minutes=30)
        cases: list[tuple[dict[str, Any], list[RunSummary]]] = [
            ({}, [s3, s2, s1]),
            ({"name": "nightly"}, [s2, s1]),
            ({"name": "weekly"}, []),
            ({"state": "Success"}, [s3]),
            ({"dialect": "qualytics"}, [s3, s1]),
            ({"start_time": T0 + hour + half}, [s3, s2]),
            ({"end_time": T0 + 2 * hour + half}, [s2, s1]),
            ({"start_time": T0 + hour + half, "end_time": T0 + 2 * hour + half}, [s2]),
            ({"limit": 2}, [s3, s2]),
            ({"name": "nightly", "limit": 1}, [s2]),
            ({"name": "nightly", "dialect": "domino", "state": "Running"}, [s2]),
        ]
        for kwargs, expected in cases:
            _assert_runs(await store.list_runs(**kwargs), expected, f"list_runs({kwargs})")
        s1b = summary(1, name="nightly", created=T0 + hour, state="Running")
        await store.append(
            [Write(stream="run-1", events=(ev.ExecutionStarted(),))], summaries=[s1b]
        )
        _assert_runs(await store.list_runs(), [s3, s2, s1b], "list_runs() after an upsert")
        _assert_runs(await store.list_runs(state="Queued"), [], "list_runs(state='Queued')")


@_check("replace_summaries")
async def check_replace_summaries(make_store: MakeStore) -> None:
    """``replace_summaries`` replaces the whole read model and leaves the log alone."""
    async with fresh_store(make_store, "replace") as store:
        s1 = summary(1, name="a", created=T0)
        s2 = summary(2, name="b", created=T0 + _dt.timedelta(minutes=1))
        await store.append([Write(stream="run-1", events=(log("1"),))], summaries=[s1, s2])
        log_before = await store.read_all()
        s2b = summary(2, name="b", created=T0 + _dt.timedelta(minutes=1), state="Failed")
        s5 = summary(5, name="e", created=T0 + _dt.timedelta(minutes=5))
        await store.replace_summaries([s2b, s5])
        _assert_runs(await store.list_runs(), [s5, s2b], "list_runs() after replace_summaries")
        await store.replace_summaries([])
        _assert_runs(await store.list_runs(), [], "list_runs() after replace_summaries([])")
        assert_records(await store.read_all(), log_before, "replace_summaries changed the log")


@_check("naive_times")
async def check_naive_times(make_store: MakeStore) -> None:
    """A naive datetime is UTC wherever the store takes one: ``list_runs`` bounds select what
    the same bounds in UTC (or in any other zone) select, and ``append(at=naive)`` records that
    time in UTC, UTC-aware."""
    hour = _dt.timedelta(hours=1)
    rows = [summary(i, name="naive", created=T0 + i * hour) for i in range(1, 5)]
    async with fresh_store(make_store, "naive") as store:
        await store.append([Write(stream="run-1", events=(log("1"),))], summaries=rows)
        east = _dt.timezone(_dt.timedelta(hours=2))
        windows = [(T0 + 2 * hour, None), (None, T0 + 2 * hour), (T0 + 2 * hour, T0 + 3 * hour)]
        for start, end in windows:
            want = [
                r
                for i, r in reversed(list(enumerate(rows, 1)))
                if (start is None or T0 + i * hour >= start)
                and (end is None or T0 + i * hour <= end)
            ]
            for zone in ("naive", "east"):

                def shift(at: _dt.datetime | None, zone: str = zone) -> _dt.datetime | None:
                    if at is None:
                        return None
                    return at.replace(tzinfo=None) if zone == "naive" else at.astimezone(east)

                got = await store.list_runs(start_time=shift(start), end_time=shift(end))
                _assert_runs(got, want, f"list_runs({zone} bounds {shift(start)}, {shift(end)})")
        at = T0 + _dt.timedelta(minutes=30, microseconds=5)
        (record,) = await store.append(
            [Write(stream="run-2", events=(log("2"),))], at=at.replace(tzinfo=None)
        )
        (stored,) = await store.read(["run-2"])
        for what, one in (("returned", record), ("read back", stored)):
            said = f"append(at={at.replace(tzinfo=None)!r}) (naive: UTC) {what} recorded_at"
            assert one.recorded_at == at, f"{said} {one.recorded_at!r}; expected {at!r}"
            assert one.recorded_at.utcoffset() == _dt.timedelta(0), (
                f"{said} {one.recorded_at!r}: not UTC-aware"
            )


class _LastWord:
    """A :class:`~lifecycle._stores.SummaryFold` for the checks: every record is a log whose text
    is ``"RUN:STATE"``, and a run's row is the last state its records said — so the row of a
    run is right exactly when the fold saw its last record, or its last append upserted it."""

    def __init__(self) -> None:
        self.fed: list[ev.Recorded] = []
        self.rows: dict[int, RunSummary] = {}

    def feed(self, records: Sequence[ev.Recorded]) -> None:
        self.fed.extend(records)
        for record in records:
            run, _, state = record.event.text.partition(":")  # type: ignore[union-attr]
            self.rows[int(run)] = _said(int(run), state)

    def summaries(self) -> list[RunSummary]:
        return [self.rows[k] for k in sorted(self.rows)]


def _said(run: int, state: str) -> RunSummary:
    return summary(run, name="rebuilt", created=T0 + _dt.timedelta(minutes=run), state=state)


async def _say(store: RunStore, run: int, state: str) -> None:
    write = Write(stream=f"run-{run}", events=(log(f"{run}:{state}"),))
    await store.append([write], summaries=[_said(run, state)])


@_check("rebuild_summaries")
async def check_rebuild_summaries(make_store: MakeStore) -> None:
    """``rebuild_summaries(fold)`` feeds every record once, in position order, replaces the read
    model with ``fold.summaries()`` and returns the rows it replaced; and it is atomic with
    respect to appends: with tasks appending (and upserting rows) all through the rebuild, every
    row ends as the last append of its run said — none reverts to what an older record said."""
    async with fresh_store(make_store, "rebuild") as store:
        for run, state in ((1, "a"), (2, "a"), (3, "a"), (2, "b")):
            await _say(store, run, state)
        stale = [_said(2, "stale"), _said(9, "no-records")]
        await store.append([], summaries=stale)
        before = await store.list_runs()
        fold = _LastWord()
        seen: list[tuple[int, int | None]] = []
        with deadline(30, "rebuild_summaries"):
            returned = await store.rebuild_summaries(fold, progress=lambda *a: seen.append(a))
        _assert_runs(
            list(reversed(returned)), before, "rebuild_summaries() returned the rows it replaced"
        )
        assert_records(fold.fed, await store.read_all(), "rebuild_summaries() fed the fold")
        want = [_said(3, "a"), _said(2, "b"), _said(1, "a")]
        _assert_runs(await store.list_runs(), want, "list_runs() after rebuild_summaries()")
        positions = [p for p, _ in seen]
        assert positions == sorted(positions), f"progress went backwards: {seen}"

        writers, runs_each, steps = 4, 25, 3
        started = anyio.Event()

        async def writer(w: int) -> None:
            for i in range(runs_each):
                run = 100 + w * runs_each + i
                for step in range(steps):
                    await _say(store, run, f"s{step}")
                    await anyio.lowlevel.checkpoint()
                if i == 2:
                    started.set()

        race = _LastWord()
        with deadline(60, "rebuild_summaries() while tasks append"):
            async with anyio.create_task_group() as tg:
                for w in range(writers):
                    tg.start_soon(writer, w)
                await started.wait()
                await store.rebuild_summaries(race)
        log_now = await store.read_all()
        assert_records(race.fed, log_now[: len(race.fed)], "rebuild_summaries() fed the fold")
        want = [_said(r, f"s{steps - 1}") for r in range(100 + writers * runs_each - 1, 99, -1)]
        _assert_runs(
            await store.list_runs(name="rebuilt", start_time=T0 + _dt.timedelta(minutes=100)),
            want,
            "list_runs() after a rebuild amid appends (a row older than its run's last append "
            "means an append landed between the rebuild's last read and its replace)",
        )


@_check("blobs")
async def check_blobs(make_store: MakeStore) -> None:
    """Blobs read back byte for byte (empty and 1 MiB ones too); ``put_blob`` overwrites; a
    missing key is ``None``."""
    async with fresh_store(make_store, "blobs") as store:
        assert await store.get_blob("missing") is None, "a missing blob must be None"
        big = bytes(range(256)) * 4096
        for key, data in (("k", b"\x00one\xff"), ("empty", b""), ("big/1", big)):
            await store.put_blob(key, data)
            got = await store.get_blob(key)
            assert got == data, f"blob {key!r} read back as {got[:20] if got else got!r}…"
        await store.put_blob("k", b"two")
        assert await store.get_blob("k") == b"two", "put_blob must overwrite"
        assert await store.get_blob("empty") == b"", "an empty blob must read back as b'', not None"


@_check("leases")
async def check_leases(make_store: MakeStore) -> None:
    """A lease is taken, renewed by its owner, refused to another owner until it expires,
    released by its owner only, and listed (expired ones too) by run id."""
    async with fresh_store(make_store, "leases") as store:
        assert await store.leases() == [], "a fresh store holds no lease"
        t0 = _dt.datetime.now(_dt.UTC)
        assert await store.acquire_lease(10, "a", 30) is True, "a free lease must be granted"
        (lease,) = await store.leases()
        assert (lease.run_id, lease.owner) == (10, "a"), f"leases() lists {lease!r}"
        assert lease.expires_at.utcoffset() == _dt.timedelta(0), "expires_at must be UTC-aware"
        t1 = _dt.datetime.now(_dt.UTC)
        ttl = _dt.timedelta(seconds=30)
        assert (
            t0 + ttl - _dt.timedelta(seconds=1)
            <= lease.expires_at
            <= t1 + ttl + _dt.timedelta(seconds=1)
        ), f"a lease for 30 s expires at {lease.expires_at}, taken at {t0}"
        assert await store.acquire_lease(10, "a", 60) is True, "the owner must be able to renew"
        (renewed,) = await store.leases()
        assert renewed.expires_at > lease.expires_at, "renewing must push expires_at back"
        assert await store.acquire_lease(10, "b", 30) is False, "another owner took a held lease"
        await store.release_lease(10, "b")
        assert await store.leases() == [renewed], "a refused owner changed the lease"
        assert await store.acquire_lease(11, "b", 0.05) is True
        assert await store.acquire_lease(12, "c", 0.05) is True
        await anyio.sleep(0.2)
        assert [x.run_id for x in await store.leases()] == [10, 11, 12], "leases() lists by run id"
        assert await store.acquire_lease(11, "a", 30) is True, "an expired lease must be granted"
        listed = {x.run_id: x.owner for x in await store.leases()}
        assert listed == {10: "a", 11: "a", 12: "c"}, f"expired leases are listed too: {listed}"
        await store.release_lease(10, "a")
        await store.release_lease(99, "a")  # holds none: nothing happens
        assert [x.run_id for x in await store.leases()] == [11, 12], "release_lease must drop it"
        assert await store.acquire_lease(10, "b", 30) is True, "a released lease is free"


@_check("run_ids")
async def check_run_ids(make_store: MakeStore) -> None:
    """``next_run_id`` hands out positive, increasing ids, never one twice, also to racing tasks."""
    async with fresh_store(make_store, "ids") as store:
        ids = [await store.next_run_id() for _ in range(5)]
        assert ids[0] > 0, f"run ids are positive: {ids}"
        assert all(a < b for a, b in pairwise(ids)), f"run ids must increase: {ids}"
        racing: list[int] = []

        async def take() -> None:
            racing.append(await store.next_run_id())

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(take)
        assert len(set(racing)) == 20, f"racing tasks got the same run id: {sorted(racing)}"
        assert min(racing) > ids[-1], "run ids must increase"
