"""Store checks of what :class:`~lifecycle._stores.RunStore` adds to an event log: the
``runs`` read model (upserted with appends, filtered — naive times as UTC —, replaced, rebuilt
atomically while others append), blobs, leases and run ids.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Awaitable, Callable, Sequence
from itertools import pairwise
from typing import Any, Final

import anyio
import anyio.lowlevel
import msgspec

from lifecycle import events as ev
from lifecycle._stores import RunStore, RunSummary, Write, open_store

from ._store_support import (
    T0,
    MakeStore,
    StoreCheck,
    assert_records,
    current_backend,
    deadline,
    fresh_store,
    is_shareable,
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


@_check("summaries_of_a_retry")
async def check_summaries_of_a_retry(make_store: MakeStore) -> None:
    """A retried append (its event ids all stored) writes nothing, its summaries included,
    even when they differ from the first try's (a retry that allocated another run id: the
    scheduler's arming, ``AsyncRuns.create(key=...)``)."""
    async with fresh_store(make_store, "retry_rows") as store:
        s1 = summary(1, name="armed", created=T0)
        fact = ev.Requested(dialect=s1.dialect, name=s1.name)
        first = await store.append(
            [Write(stream="run-1", events=(fact,), event_ids=("k:run:0",))], summaries=[s1]
        )
        s2 = summary(2, name="armed", created=T0)
        again = await store.append(
            [Write(stream="run-2", events=(fact,), event_ids=("k:run:0",))], summaries=[s2]
        )
        assert again == first, "a retry (its event ids stored) must return the original records"
        _assert_runs(await store.list_runs(), [s1], "list_runs() after a retried append")


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
    """A naive datetime is UTC wherever the store takes one, and every datetime it gives back is
    UTC-aware, in UTC: ``list_runs`` bounds select what the same bounds in UTC (or in any other
    zone) select; ``append(at=…)``, ``Write.recorded_at`` and the times of a ``RunSummary``
    (upserted, or replaced), naive or in another zone, come back — returned and read back —
    as the same instants in UTC."""
    hour = _dt.timedelta(hours=1)
    rows = [summary(i, name="naive", created=T0 + i * hour) for i in range(1, 5)]
    east = _dt.timezone(_dt.timedelta(hours=2))

    def naive(at: _dt.datetime) -> _dt.datetime:
        return at.replace(tzinfo=None)

    def utc(at: _dt.datetime | None, said: str, want: _dt.datetime) -> None:
        assert at is not None, f"{said} None; expected {want!r}"
        assert at.utcoffset() == _dt.timedelta(0), f"{said} {at!r}: not UTC-aware, in UTC"
        assert at == want, f"{said} {at!r}; expected {want!r}"

    async with fresh_store(make_store, "naive") as store:
        await store.append([Write(stream="run-1", events=(log("1"),))], summaries=rows)
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
                    return naive(at) if zone == "naive" else at.astimezone(east)

                got = await store.list_runs(start_time=shift(start), end_time=shift(end))
                _assert_runs(got, want, f"list_runs({zone} bounds {shift(start)}, {shift(end)})")

        at = T0 + _dt.timedelta(minutes=30, microseconds=5)
        for stream, given in (("run-2", naive(at)), ("run-3", at.astimezone(east))):
            (record,) = await store.append([Write(stream=stream, events=(log(stream),))], at=given)
            (stored,) = await store.read([stream])
            for what, one in (("returned", record), ("read back", stored)):
                utc(one.recorded_at, f"append(at={given!r}) {what} recorded_at", at)

        stamps = (naive(at), (at + hour).astimezone(east))
        write = Write(stream="run-4", events=(log("a"), log("b")), recorded_at=stamps)
        returned = await store.append([write], at=T0)
        stored_records = await store.read(["run-4"])
        for what, records in (("returned", returned), ("read back", stored_records)):
            assert len(records) == 2, f"append(Write(recorded_at=…)) {what} {len(records)} records"
            for given, instant, one in zip(stamps, (at, at + hour), records, strict=True):
                said = f"append(Write(recorded_at=({given!r}, …))) {what} recorded_at"
                utc(one.recorded_at, said, instant)

        times = {"created_at": at, "started_at": at + hour, "ended_at": at + 2 * hour}
        given_times = {
            "created_at": naive(at),
            "started_at": (at + hour).astimezone(east),
            "ended_at": naive(at + 2 * hour),
        }
        upserted = summary(
            7,
            name="zones",
            created=given_times["created_at"],
            started_at=given_times["started_at"],
            ended_at=given_times["ended_at"],
        )
        await store.append([Write(stream="run-7", events=(log("7"),))], summaries=[upserted])
        replaced = msgspec.structs.replace(upserted, run_id=8)
        for how in ("upserted", "replaced"):
            if how == "replaced":
                await store.replace_summaries([*(await store.list_runs()), replaced])
            listed = {r.run_id: r for r in await store.list_runs(name="zones")}
            for run_id in (7,) if how == "upserted" else (7, 8):
                row = listed.get(run_id)
                assert row is not None, f"list_runs() lost run {run_id} ({how})"
                for field, instant in times.items():
                    said = (
                        f"a RunSummary {how} with {field}={given_times[field]!r} reads back "
                        f"(run {run_id}) as"
                    )
                    utc(getattr(row, field), said, instant)
            window = await store.list_runs(
                name="zones", start_time=naive(at), end_time=at.astimezone(east)
            )
            assert {r.run_id for r in window} == set(listed), (
                f"list_runs() with bounds at the created_at of runs {sorted(listed)} ({how}, "
                f"given naive and in +02:00) found {sorted(r.run_id for r in window)}"
            )


class _LastWord:
    """A :class:`~lifecycle._stores.SummaryFold` for the checks: every record is a log whose text
    is ``"RUN:STATE"``, and a run's row is the last state its records said — so the row of a
    run is right exactly when the fold saw its last record, or its last append upserted it. A
    run that said ``"?"`` cannot be folded: the fold keeps it (the store must leave its row)."""

    def __init__(self) -> None:
        self.fed: list[ev.Recorded] = []
        self.rows: dict[int, RunSummary] = {}
        self.unfolded: set[int] = set()
        self.asked = 0
        self.on_summaries: Callable[[], None] | None = None

    def feed(self, records: Sequence[ev.Recorded]) -> None:
        self.fed.extend(records)
        for record in records:
            run, _, state = record.event.text.partition(":")  # type: ignore[union-attr]
            if state == "?":
                self.unfolded.add(int(run))
            self.rows[int(run)] = _said(int(run), state)

    def summaries(self) -> list[RunSummary]:
        if self.on_summaries is not None:
            self.on_summaries()
        self.asked += 1
        return [self.rows[k] for k in sorted(self.rows) if k not in self.unfolded]

    def kept(self) -> list[int]:
        return sorted(self.unfolded)


def _said(run: int, state: str) -> RunSummary:
    return summary(run, name="rebuilt", created=T0 + _dt.timedelta(minutes=run), state=state)


async def _say(store: RunStore, run: int, state: str, *, row: bool = True) -> None:
    write = Write(stream=f"run-{run}", events=(log(f"{run}:{state}"),))
    await store.append([write], summaries=[_said(run, state)] if row else [])


def _elsewhere(store: RunStore) -> Callable[[int, str], None]:
    """``say(run, state)``, as :func:`_say` does, callable from synchronous code on the event
    loop — a rebuild's ``progress`` — that returns once the append is committed: so the append
    lands for certain between two steps of the rebuild. It goes through another instance of
    the store, opened on its URL (another connection, as another process would append), when
    the URL can be opened again; else through ``store`` itself. Either way it runs on a thread
    of its own, with an event loop of its own, while the test's loop waits for it."""
    backend = current_backend()

    async def append(run: int, state: str) -> None:
        if not is_shareable(store.url):
            await _say(store, run, state)
            return
        async with open_store(store.url) as other:
            await _say(other, run, state)

    def say(run: int, state: str) -> None:
        failed: list[BaseException] = []

        def main() -> None:
            try:
                anyio.run(append, run, state, backend=backend)
            except BaseException as exc:  # handed to the caller
                failed.append(exc)

        thread = threading.Thread(target=main, name="store-check-elsewhere", daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), f"an append from another thread took over 30 s ({store.url})"
        if failed:
            raise failed[0]

    return say


_LOST: Final = (
    "(a row older than its run's last append means an append landed between the rebuild's last "
    "read and its replace)"
)


@_check("rebuild_summaries")
async def check_rebuild_summaries(make_store: MakeStore) -> None:
    """``rebuild_summaries(fold)`` feeds every record once, in position order, replaces the read
    model with ``fold.summaries()`` — leaving the rows of the runs in ``fold.kept()`` as they
    are — and returns the rows it replaced. It is atomic with respect to appends, which three
    parts make land at chosen moments: an append committed from elsewhere inside its first
    ``progress`` call — after it began reading, before it replaced — must be fed to the fold
    and be in the read model; an append by a task started when the fold is first asked for its
    rows (it runs at the rebuild's next ``await``: a rebuild that awaits between reading the log
    and replacing lets it in unseen) must be in the read model; and with tasks appending (and
    upserting rows) all through rebuilds, every row must end as the last append of its run
    said — none reverting to what an older record said."""
    async with fresh_store(make_store, "rebuild") as store:
        for run, state in ((1, "a"), (2, "a"), (3, "a"), (2, "b"), (4, "?")):
            await _say(store, run, state)
        await _say(store, 5, "?", row=False)
        stale = [_said(2, "stale"), _said(4, "left-alone"), _said(9, "no-records")]
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
        want = [_said(4, "left-alone"), _said(3, "a"), _said(2, "b"), _said(1, "a")]
        _assert_runs(
            await store.list_runs(),
            want,
            "list_runs() after rebuild_summaries() (the fold keeps runs 4 and 5: run 4's row "
            "must be left as it was, and run 5 left without one)",
        )
        positions = [p for p, _ in seen]
        assert seen, "rebuild_summaries() never called progress"
        assert positions == sorted(positions), f"progress went backwards: {seen}"

        # an append lands between the rebuild's first read and its replace, for certain
        late = _LastWord()
        calls = 0
        say = _elsewhere(store)

        def progress(position: int, head: int | None) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                say(2, "late")
                say(6, "new")

        with deadline(30, "rebuild_summaries() with an append during its first pass"):
            await store.rebuild_summaries(late, progress=progress)
        assert calls, "rebuild_summaries() never called progress"
        want = [_said(6, "new"), _said(4, "left-alone"), _said(3, "a"), _said(2, "late")]
        want.append(_said(1, "a"))
        _assert_runs(
            await store.list_runs(),
            want,
            f"list_runs() after a rebuild during which another writer appended {_LOST}",
        )
        assert_records(
            late.fed,
            await store.read_all(),
            "rebuild_summaries() fed the fold (what was appended while it ran too)",
        )

        # an append scheduled from the fold, when it is asked for its rows on the event loop's
        # thread: it runs at the rebuild's next await, if there is one before the replace
        meddling = _LastWord()
        loop_thread = threading.current_thread()
        async with anyio.create_task_group() as tg:

            def meddle() -> None:
                if threading.current_thread() is loop_thread and not meddling.asked:
                    tg.start_soon(_say, store, 3, "meddled")

            meddling.on_summaries = meddle
            with deadline(30, "rebuild_summaries() with an append after the fold's rows"):
                await store.rebuild_summaries(meddling)
        assert meddling.asked, "rebuild_summaries() never asked the fold for its rows"
        log_now = await store.read_all()
        assert_records(
            meddling.fed, log_now[: len(meddling.fed)], "rebuild_summaries() fed the fold"
        )
        _assert_runs(
            await store.list_runs(),
            [_said(6, "new"), _said(4, "left-alone"), _said(3, "meddled"), *want[3:]],
            "list_runs() after a rebuild during which a task appended once the fold had given "
            f"its rows {_LOST}",
        )

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

        done = anyio.Event()
        rebuilds = 0

        async def rebuilder() -> None:  # again and again while the writers write, once after
            nonlocal rebuilds
            await started.wait()
            while True:
                race = _LastWord()
                await store.rebuild_summaries(race)
                log_now = await store.read_all()
                said = "rebuild_summaries() amid appends fed the fold"
                assert_records(race.fed, log_now[: len(race.fed)], said)
                rebuilds += 1
                if done.is_set():
                    return
                await anyio.lowlevel.checkpoint()

        with deadline(60, "rebuild_summaries() while tasks append"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rebuilder)
                async with anyio.create_task_group() as writing:
                    for w in range(writers):
                        writing.start_soon(writer, w)
                done.set()
        assert rebuilds > 0
        want = [_said(r, f"s{steps - 1}") for r in range(100 + writers * runs_each - 1, 99, -1)]
        _assert_runs(
            await store.list_runs(name="rebuilt", start_time=T0 + _dt.timedelta(minutes=100)),
            want,
            f"list_runs() after a rebuild amid appends {_LOST}",
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
