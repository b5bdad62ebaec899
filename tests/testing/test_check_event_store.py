"""The store conformance suite: every check on ``memory://`` (asyncio and trio) and on SQLite
(asyncio: aiosqlite), the checks that reopen the store and spawn processes on SQLite, the
Hypothesis model on both — and proof that the suite fails stores that break a guarantee."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest
from hypothesis import Phase, settings

from lifecycle import events as ev
from lifecycle._stores import MemoryStore, RunStore, RunSummary, Write, open_store
from lifecycle.testing._store_machine import store_state_machine
from lifecycle.testing._store_processes import _check_after_crash
from lifecycle.testing._store_support import derive_url, log, reconcile_race
from lifecycle.testing._stores import (
    PROCESS_CHECKS,
    STORE_CHECKS,
    StoreCheck,
    check_event_store,
)

pytestmark = pytest.mark.anyio

CHECKS = pytest.mark.parametrize(("name", "check"), STORE_CHECKS, ids=[n for n, _ in STORE_CHECKS])
ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])


# -- every backend passes -------------------------------------------------------------------------


@CHECKS
async def test_memory(name: str, check: StoreCheck) -> None:
    await check("memory://")


@ASYNCIO_ONLY
@CHECKS
async def test_sqlite(name: str, check: StoreCheck, tmp_path: Path) -> None:
    await check(f"sqlite:///{tmp_path}/runs.db")


@pytest.mark.slow
@ASYNCIO_ONLY
@pytest.mark.parametrize(("name", "check"), PROCESS_CHECKS, ids=[n for n, _ in PROCESS_CHECKS])
async def test_sqlite_processes(name: str, check: StoreCheck, tmp_path: Path) -> None:
    await check(f"sqlite:///{tmp_path}/runs.db")


async def test_whole_suite_on_memory() -> None:
    await check_event_store("memory://")


@ASYNCIO_ONLY
async def test_factories_of_stores_and_of_urls(tmp_path: Path) -> None:
    """``make_store`` may be a factory (plain or async) of stores or of URLs."""

    async def store() -> RunStore:
        return MemoryStore()

    def url() -> str:
        return f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db"

    def sqlite_store() -> RunStore:
        return open_store(url())

    for _, check in STORE_CHECKS[:3]:
        await check(store)
        await check(url)
        await check(sqlite_store)
    await dict(PROCESS_CHECKS)["reopen"](url)
    await dict(PROCESS_CHECKS)["reopen"](sqlite_store)


def test_fresh_urls_are_derived_next_to_the_one_given() -> None:
    url = derive_url("sqlite:////tmp/t/runs.db?durability=durable", "ordering")
    assert re.fullmatch(r"sqlite:////tmp/t/runs-ordering-[0-9a-f]{8}\.db\?durability=durable", url)
    assert derive_url("memory://", "ordering") == "memory://"


async def test_process_checks_need_a_shareable_store() -> None:
    for make_store in ("memory://", MemoryStore):
        with pytest.raises(ValueError, match="another process"):
            await dict(PROCESS_CHECKS)["reopen"](make_store)
    with pytest.raises(ValueError, match="another process"):
        await check_event_store(MemoryStore, processes=True)


async def test_a_store_that_is_not_fresh_is_refused() -> None:
    shared = MemoryStore()
    await shared.append([Write(stream="old", events=(log("old"),))])
    with pytest.raises(AssertionError, match="not empty"):
        await STORE_CHECKS[0][1](lambda: shared)


TestMemoryModel = store_state_machine("memory://")
TestMemoryModelTrio = store_state_machine("memory://", backend="trio")


def test_sqlite_model(tmp_path: Path) -> None:
    quick = store_state_machine(
        f"sqlite:///{tmp_path}/model.db", max_examples=25, stateful_step_count=20
    )
    quick("runTest").debug()


# -- and the suite fails stores that break a guarantee --------------------------------------------


class NoVersionCheck(MemoryStore):
    """Ignores expected versions."""

    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        plain = [msgspec.structs.replace(w, expected_version=None) for w in writes]
        return await super().append(plain, **kw)


class WritesRetriesAgain(MemoryStore):
    """Writes a retried append a second time instead of returning the original records."""

    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        ids = [i for w in writes for i in w.event_ids or ()]
        if ids and all(i in self._by_id for i in ids):
            writes = [msgspec.structs.replace(w, event_ids=None) for w in writes]
        return await super().append(writes, **kw)


class NotAtomic(MemoryStore):
    """Appends write by write, so a failing write leaves the earlier ones behind."""

    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        out: list[ev.Recorded] = []
        for w in writes:
            out += await super().append([w], **kw)
        return out


class OutOfOrderCommits(MemoryStore):
    """Takes positions first and makes records visible later, in any order (what a database
    sequence does): a tailing reader can move past a position that is not visible yet."""

    def __init__(self) -> None:
        super().__init__()
        self._hidden: set[int] = set()

    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        out = await super().append(writes, **kw)
        self._hidden.update(r.position for r in out)
        await anyio.sleep(random.random() / 500)
        self._hidden.difference_update(r.position for r in out)
        return out

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        visible = [r for r in await super().read_all(after=after) if r.position not in self._hidden]
        return visible[:limit] if limit is not None else visible


class WaitNeverBlocks(MemoryStore):
    async def wait(self, after: int) -> int:
        await anyio.lowlevel.checkpoint()
        return len(self._log)


class OldestFirst(MemoryStore):
    async def list_runs(self, **kw: Any) -> list[RunSummary]:
        return list(reversed(await super().list_runs(**kw)))


class LeaseForAnyone(MemoryStore):
    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        self._leases.pop(run_id, None)
        return await super().acquire_lease(run_id, owner, ttl)


class SameRunId(MemoryStore):
    async def next_run_id(self) -> int:
        return 1


class ForgetsBlobs(MemoryStore):
    async def get_blob(self, key: str) -> bytes | None:
        return (await super().get_blob(key)) or None


class ForgetsTheTime(MemoryStore):
    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        kw.pop("at", None)
        return await super().append(writes, **kw)


class Unguarded(MemoryStore):
    """A store whose methods skip the argument checks every ``EventStore`` subclass gets (put
    on the class after it was made, so ``__init_subclass__`` never saw them)."""


for _name in ("append", "read", "read_all"):
    setattr(Unguarded, _name, getattr(MemoryStore, _name).__wrapped__)


BROKEN = [
    (NoVersionCheck, "optimistic_concurrency"),
    (NoVersionCheck, "concurrent_writers"),
    (NoVersionCheck, "atomic_batches"),
    (WritesRetriesAgain, "idempotency"),
    (NotAtomic, "atomic_batches"),
    (OutOfOrderCommits, "tailing_reader"),
    (WaitNeverBlocks, "wait"),
    (OldestFirst, "summaries"),
    (LeaseForAnyone, "leases"),
    (SameRunId, "run_ids"),
    (ForgetsBlobs, "blobs"),
    (ForgetsTheTime, "facts_round_trip"),
    (Unguarded, "invalid_facts"),
    (Unguarded, "write_arguments"),
    (Unguarded, "limits"),
    (Unguarded, "read_arguments"),
]


@pytest.mark.parametrize(("store", "name"), BROKEN, ids=[f"{s.__name__}-{n}" for s, n in BROKEN])
async def test_a_broken_store_fails_its_check(store: type[MemoryStore], name: str) -> None:
    with pytest.raises(AssertionError, match=f"store check {name!r} failed"):
        await dict(STORE_CHECKS)[name](store)


async def test_the_suite_names_the_first_failing_check() -> None:
    with pytest.raises(AssertionError, match="store check 'optimistic_concurrency' failed: "):
        await check_event_store(NoVersionCheck)


@pytest.mark.parametrize("store", [NoVersionCheck, WritesRetriesAgain, NotAtomic])
def test_the_model_fails_a_broken_store(store: type[MemoryStore]) -> None:
    # finding the bug is the point here; shrinking it would only cost time
    fast = settings(phases=[Phase.generate], report_multiple_bugs=False, deadline=None)
    case = store_state_machine(store, max_examples=200, settings=fast)
    with pytest.raises(AssertionError):
        case("runTest").debug()


def _record(stream: str, version: int, position: int, event_id: str) -> ev.Recorded:
    return ev.Recorded(
        stream=stream,
        version=version,
        position=position,
        event_id=event_id,
        recorded_at=dt.datetime.now(dt.UTC),
        event=log(event_id),
    )


def test_the_crash_check_fails_torn_batches_and_lost_acknowledgements() -> None:
    whole = [_record("crash-0", 1, 1, "r0.0.0.0/2"), _record("crash-0", 2, 2, "r0.0.0.1/2")]
    acked = [(r.stream, r.version, r.position, r.event_id) for r in whole]
    _check_after_crash(whole, acked, {("r0", 0): 0})  # passes
    with pytest.raises(AssertionError, match="half-written"):
        _check_after_crash(whole[:1], acked[:1], {("r0", 0): 0})
    with pytest.raises(AssertionError, match="acknowledged before the crash"):
        _check_after_crash([], acked, {("r0", 0): 0})
    with pytest.raises(AssertionError, match="has a hole"):
        _check_after_crash([whole[0], _record("crash-0", 3, 2, "x")], acked[:1], {})


def test_the_race_reconciliation_fails_spurious_conflicts_and_stray_records() -> None:
    stored = [_record("s", 1, 1, "a")]
    won = [([("s", 1, 1, "a")], {"s": 0})]
    reconcile_race(stored, won, [(["b"], {"s": 0})], 2)  # passes: b lost to a
    with pytest.raises(AssertionError, match="spurious"):
        reconcile_race(stored, won, [(["b"], {"s": 1})], 2)
    with pytest.raises(AssertionError, match="no writer was told"):
        reconcile_race([*stored, _record("s", 2, 2, "b")], won, [], 1)
    two = [*stored, _record("s", 2, 2, "b")]
    unenforced = [*won, ([("s", 2, 2, "b")], {"s": 0})]
    with pytest.raises(AssertionError, match="not enforced"):
        reconcile_race(two, unenforced, [], 2)
    both = [*won, ([("s", 2, 2, "b")], {"s": 1})]
    with pytest.raises(AssertionError, match="refused append left"):
        reconcile_race(two, both, [(["b"], {"s": 0})], 3)
