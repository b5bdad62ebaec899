"""Leases on memory://: a run whose engine is gone is ended ``engine_lost``; a live engine keeps
its runs; an engine that loses its lease stops its work. (The cross-process test, an engine
killed with SIGKILL, is in ``test_engine_processes.py``: it needs SQLite.)"""

from __future__ import annotations

import itertools

import anyio
import pytest
from trio.testing import MockClock

import lifecycle
from lifecycle import MemoryStore
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._engine import Container, Engine, reconcile
from lifecycle._leases import LeaseTimes
from lifecycle._stores import Lease

pytestmark = pytest.mark.anyio


async def _orphan(runs: lifecycle.AsyncRuns, dialect: str, ttl: float) -> int:
    """A running run whose engine 'died' (its lease lapses after ``ttl``)."""
    run = await runs.create(dialect, containers=["a", "b"])
    await runs.record(run.id, START_SEQUENCE)
    await runs.record(run.id, START_SEQUENCE, container="a")
    await runs.record(run.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="b")
    assert await runs.store.acquire_lease(run.id, "dead-engine", ttl)
    return run.id


@pytest.mark.parametrize(("dialect", "state"), [("domino", "Error"), ("datatailr", "Failed")])
async def test_reconcile_ends_runs_whose_lease_expired(
    runs: lifecycle.AsyncRuns, dialect: str, state: str
) -> None:
    lost = await _orphan(runs, dialect, ttl=0.05)
    alive = await _orphan(runs, dialect, ttl=60)
    unleased = await runs.create(dialect, containers=["a"])  # recorded by hand: never touched
    assert await reconcile(runs) == []  # nothing expired yet
    await anyio.sleep(0.1)
    ended = await reconcile(runs)
    assert [v.run_id for v in ended] == [lost]
    view = await runs.get(lost)
    assert (view.state, view.reason) == (state, "engine_lost")
    assert view.containers["a"].reason == "engine_lost"
    assert view.containers["b"].outcome == "succeeded"  # ended before: left as it was
    assert not (await runs.get(alive)).terminal
    assert not (await runs.get(unleased.id)).terminal
    assert [lease.run_id for lease in await runs.store.leases()] == [alive]
    assert await reconcile(runs) == []


async def test_a_new_engine_reconciles(runs: lifecycle.AsyncRuns) -> None:
    run = await runs.create("qualytics", operation="scan", containers=["a"])
    await runs.record(run.id, START_SEQUENCE)
    assert await runs.store.acquire_lease(run.id, "dead-engine", 0.01)
    await anyio.sleep(0.05)
    async with Engine(runs, adapter="inprocess"):
        pass
    view = await runs.get(run.id)
    assert (view.state, view.reason) == ("Failure", "engine_lost")
    assert view.containers["a"].state == "Failure"


async def test_live_engine_renews_its_lease(runs: lifecycle.AsyncRuns) -> None:
    gate = anyio.Event()

    async def held() -> None:
        await gate.wait()

    async with Engine(runs, adapter="inprocess", lease_ttl=0.15) as engine:
        run = await engine.submit("domino", containers=[Container("a", call=held)])
        await anyio.sleep(0.5)  # several lease lifetimes
        assert await reconcile(runs) == []
        assert not (await runs.get(run.id)).terminal
        gate.set()
        assert (await engine.wait(run.id)).state == "Succeeded"


async def test_engine_that_loses_its_lease_stops_its_work(runs: lifecycle.AsyncRuns) -> None:
    cancelled = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep(3600)
        finally:
            cancelled.set()

    async with Engine(runs, adapter="inprocess", lease_ttl=0.3) as engine:
        run = await engine.submit("domino", containers=[Container("a", call=forever)])
        await anyio.sleep(0.05)
        # someone decided this engine was dead (e.g. its event loop stalled past the ttl)
        await runs.store.release_lease(run.id, engine.owner)
        assert await runs.store.acquire_lease(run.id, "reconciler", 60)
        with anyio.fail_after(5):
            await cancelled.wait()
        await runs.abort(run.id, by="reconciler")
    view = await runs.get(run.id)
    assert view.state == "Stopped"  # the engine wrote nothing after losing the lease
    assert [lease.owner for lease in await runs.store.leases()] == ["reconciler"]


class _WatchedStore(MemoryStore):
    """Notes, on the event loop's clock, each lease check (``leases``) and each lease taken or
    renewed (``acquire_lease``)."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: list[float] = []
        self.renewals: list[float] = []

    async def leases(self) -> list[Lease]:
        self.checks.append(anyio.current_time())
        return await super().leases()

    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        self.renewals.append(anyio.current_time())
        return await super().acquire_lease(run_id, owner, ttl)


def _gaps(times: list[float]) -> set[float]:
    return {round(b - a, 6) for a, b in itertools.pairwise(times)}


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-virtual-clock")],
)
async def test_checks_and_renewals_follow_the_lease_schedule() -> None:
    """Issue 12.8: an engine renews its leases every ttl/3 and looks for lost ones every ttl/4,
    so a dead engine's run ends at most 1.25 x ttl after the death (its lease expires at most
    ttl after it, the next check comes at most ttl/4 later). Checked on a virtual clock: the
    schedule, not wall time."""
    ttl = 12.0
    assert LeaseTimes(ttl) == LeaseTimes(ttl=12.0)
    assert (LeaseTimes(ttl).renew_every, LeaseTimes(ttl).check_every) == (4.0, 3.0)
    assert LeaseTimes(ttl).worst_case == 15.0 <= 1.5 * ttl
    store = _WatchedStore()
    gate = anyio.Event()
    async with (
        lifecycle.AsyncRuns(store) as runs,
        Engine(runs, adapter="inprocess", lease_ttl=ttl) as engine,
    ):
        assert engine.lease == LeaseTimes(ttl)
        await anyio.sleep(0.5)
        run = await engine.submit("domino", containers=[Container("a", call=gate.wait)])
        await anyio.sleep(10 * ttl)
        gate.set()
        assert (await engine.wait(run.id)).state == "Succeeded"
    assert len(store.checks) >= 40
    assert _gaps(store.checks) == {3.0}
    assert len(store.renewals) >= 30
    assert _gaps(store.renewals) == {4.0}
