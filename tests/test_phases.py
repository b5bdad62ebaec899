"""The embedding API (issue 13): phases (``advance``), ``accepts``, the aggregation policy
enforced for every writer, and ``finish``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle
from lifecycle import InvalidTransition, PolicyViolation, StreamClosed
from lifecycle import events as ev
from lifecycle._phases import PHASES, plan
from lifecycle.testing import paths

pytestmark = pytest.mark.anyio

BUILT_IN = ["datatailr", "domino", "qualytics"]
OPERATION = {"datatailr": "run", "domino": "run", "qualytics": "scan"}
OUTCOME = {
    "succeeded": "succeeded",
    "failed": "failed",
    "out_of_memory": "failed",
    "lost": "failed",
    "cancelled": "cancelled",
}


def _active_states(name: str) -> list[tuple[str, list[ev.Fact]]]:
    """Every active state of a dialect's run stream, with a shortest history reaching it."""
    found = paths(name, "shortest", operation=OPERATION[name])
    d = lifecycle.dialect(name)
    return [(p.final, list(p.facts)) for p in found if d.table.outcome[p.final] is None]


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_phase_from_every_active_state_is_reached_or_refused(name: str) -> None:
    d = lifecycle.dialect(name)
    checked = 0
    for state, history in _active_states(name):
        for phase in PHASES:
            try:
                facts = plan(d, state, phase)
            except InvalidTransition:
                continue  # unreachable from here: checked by name below
            view = lifecycle.fold(d, [*history, *facts])  # every fact is accepted in order
            if phase in OUTCOME:
                assert view.outcome == OUTCOME[phase], (state, phase, facts)
            else:
                assert not view.terminal
            checked += 1
    assert checked >= 5 * len(_active_states(name))


@pytest.mark.parametrize(
    ("name", "state", "phase", "expected"),
    [
        # Domino refuses ExecutionStarted from Scheduled: the phase adds PreparationStarted
        ("domino", "Scheduled", "started", ["PreparationStarted", "ExecutionStarted"]),
        ("datatailr", "Ready", "queued", ["ResourcesRequested"]),
        ("datatailr", "Running", "queued", ["Requeued"]),  # a retry
        ("datatailr", "Running", "assigned", []),  # a late hook: nothing to record
        ("qualytics", "Queued", "assigned", []),  # qualytics tolerates it: already there
        ("qualytics", "Running", "queued", ["Requeued"]),
        ("domino", "StopRequested", "cancelled", ["StoppingStarted", "Stopped"]),
    ],
)
def test_plans_per_dialect(name: str, state: str, phase: str, expected: list[str]) -> None:
    facts = plan(lifecycle.dialect(name), state, phase)
    assert [type(f).__name__ for f in facts] == expected


def test_unreachable_phases_and_closed_streams_raise_naming_the_state() -> None:
    with pytest.raises(InvalidTransition, match="StopRequested"):
        plan(lifecycle.dialect("domino"), "StopRequested", "queued")
    with pytest.raises(StreamClosed, match="Completed"):
        plan(lifecycle.dialect("datatailr"), "Completed", "failed")
    assert plan(lifecycle.dialect("datatailr"), "Completed", "succeeded") == []
    with pytest.raises(ValueError, match="unknown phase 'done'"):
        plan(lifecycle.dialect("datatailr"), "Ready", "done")


@pytest.mark.parametrize("name", BUILT_IN)
async def test_advance_drives_a_run_and_its_containers(name: str) -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create(name, operation=OPERATION[name], containers=["a", "b"])
        await runs.advance(run.id, "started")
        for phase in ["queued", "assigned", "started", "started", "queued", "started"]:
            await runs.advance(run.id, phase, container="a")
        await runs.advance(run.id, "succeeded", container="a")
        await runs.advance(run.id, "succeeded", container="a")  # repeated: nothing recorded
        await runs.advance(run.id, "out_of_memory", container="b", limit_bytes=10)
        view = await runs.get(run.id)
        assert view.containers["a"].attempt == 2
        assert view.containers["a"].outcome == "succeeded"
        assert view.containers["b"].reason == "out of memory (limit 10 bytes)"
        versions = view.containers["a"].version
        assert (await runs.get(run.id)).containers["a"].version == versions
        with pytest.raises(lifecycle.UnknownContainer):
            await runs.advance(run.id, "started", container="nope")


# -- the aggregation policy, for every writer (issue 13.3) ---------------------------------------


@pytest.mark.parametrize("name", ["datatailr", "domino"])
async def test_a_success_the_policy_contradicts_is_refused_naming_the_container(
    name: str,
) -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create(name, containers=["good", "bad"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "succeeded", container="good")
        await runs.advance(run.id, "failed", container="bad", error="boom")
        before = await runs.history(run.id)
        assert not await runs.accepts(run.id, ev.ExecutionSucceeded())
        with pytest.raises(PolicyViolation, match="'bad'") as caught:
            await runs.record(run.id, ev.ExecutionSucceeded())
        assert (caught.value.container, caught.value.expected) == ("bad", "failed")
        assert await runs.history(run.id) == before  # nothing written
        view = await runs.advance(run.id, "failed", error="container bad failed")
        assert view.outcome == "failed"


async def test_a_cancelled_container_rules_out_success_under_fail() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["a", "b"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "succeeded", container="a")
        await runs.advance(run.id, "cancelled", container="b", reason="upstream_failed")
        with pytest.raises(PolicyViolation) as caught:
            await runs.advance(run.id, "succeeded")
        assert (caught.value.container, caught.value.expected) == ("b", "cancelled")


async def test_qualytics_warn_policy_accepts_success_with_a_failed_container() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("qualytics", operation="scan", containers=["t1", "t2"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "succeeded", container="t1")
        await runs.advance(run.id, "failed", container="t2", error="bad rows")
        assert await runs.accepts(run.id, ev.ExecutionSucceeded())
        view = await runs.advance(run.id, "succeeded")
        assert (view.state, view.warning) == ("Success", True)


# -- finish (issue 13.4) ---------------------------------------------------------------------


async def test_finish_stops_what_never_started_and_derives_the_outcome() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["extract", "load", "report"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "succeeded", container="extract")
        await runs.advance(run.id, "failed", container="load", error="boom")
        view = await runs.finish(run.id, reason="not_ready")
        assert (view.state, view.reason) == ("Failed", "container 'load' failed: boom")
        assert view.containers["report"].state == "Stopped"
        assert view.containers["report"].reason == "not_ready"
        assert await runs.finish(run.id) == view  # finished already: nothing recorded
        with pytest.raises(StreamClosed):
            await runs.finish(run.id, "succeeded")


@pytest.mark.parametrize(
    ("name", "state"), [("datatailr", "Stopped"), ("domino", "Stopped"), ("qualytics", "Success")]
)
async def test_finish_of_a_run_whose_containers_never_ran(name: str, state: str) -> None:
    """Nothing failed; what never started was stopped: datatailr and domino (``fail``) end the
    run cancelled by the first stopped container, qualytics (``warn``) Success with Warning."""
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create(name, operation=OPERATION[name], containers=["a"])
        view = await runs.finish(run.id, reason="gave_up")
        assert view.state == state
        assert view.containers["a"].reason == "gave_up"


async def test_finish_with_an_outcome_is_validated() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("domino", containers=["a"])
        await runs.advance(run.id, "started")
        await runs.advance(run.id, "failed", container="a", error="x")
        before = await runs.history(run.id)
        with pytest.raises(PolicyViolation, match="'a'"):
            await runs.finish(run.id, "succeeded")
        assert await runs.history(run.id) == before
        with pytest.raises(ValueError, match="outcome must be"):
            await runs.finish(run.id, "done")  # type: ignore[arg-type]
        view = await runs.finish(run.id, "cancelled", reason="operator")
        assert view.outcome == "cancelled"


async def test_finish_is_one_append() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["a", "b"])
        await runs.advance(run.id, "started")
        head = len(await runs.history(run.id))
        await runs.finish(run.id, reason="r")
        after = (await runs.history(run.id))[head:]
        assert len({r.recorded_at for r in after}) == 1  # one append: one timestamp


def test_blocking_twins() -> None:
    with lifecycle.Runs() as runs:
        run = runs.create("datatailr", containers=["a"])
        runs.advance(run.id, "started")
        runs.advance(run.id, "started", container="a")
        assert runs.accepts(run.id, ev.ExecutionSucceeded(), container="a")
        assert not runs.accepts(run.id, ev.ExecutionSucceeded())  # "a" is still active
        assert runs.finish(run.id, reason="r").state == "Stopped"


class TestOnSqlite:
    """The same rules on the SQLite store (asyncio only: aiosqlite runs on asyncio only)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_policy_and_finish(self, tmp_path: Path) -> None:
        async with lifecycle.AsyncRuns(f"sqlite:///{tmp_path / 'runs.db'}") as runs:
            run = await runs.create("datatailr", containers=["a"])
            await runs.advance(run.id, "started")
            await runs.advance(run.id, "failed", container="a", error="x")
            with pytest.raises(PolicyViolation):
                await runs.advance(run.id, "succeeded")
            assert (await runs.finish(run.id)).state == "Failed"


# -- property: any sequence of phases records only facts the dialect accepts ----------------------

_PHASE_CALLS = st.lists(
    st.tuples(st.sampled_from(PHASES), st.sampled_from([None, "a", "b"])), max_size=14
)


@pytest.mark.parametrize("name", BUILT_IN)
def test_any_phase_sequence_records_only_accepted_facts(name: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_PHASE_CALLS)
    def check(calls: list[tuple[str, str | None]]) -> None:
        with lifecycle.Runs() as runs:
            run = runs.create(name, operation=OPERATION[name], containers=["a", "b"])
            for phase, container in calls:
                before = runs.history(run.id)
                kwargs: dict[str, Any] = {"container": container}
                try:
                    view = runs.advance(run.id, phase, **kwargs)
                except (InvalidTransition, lifecycle.UnknownContainer):
                    assert runs.history(run.id) == before  # refused: nothing written
                    continue
                stream = view if container is None else view.containers[container]
                if phase in OUTCOME:
                    assert stream.outcome == OUTCOME[phase]
            # the log replays under its dialect without a single rejection
            facts = [r.event for r in runs.history(run.id) if "/" not in r.stream]
            replayed = lifecycle.fold(name, facts)
            assert replayed.state == runs.get(run.id).state

    check()


async def test_advance_many_plans_each_move_from_the_moves_before_it() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("domino", name="batch")
        records = await runs.advance_many(
            run.id,
            [
                (None, "started"),
                (None, ev.ContainerAdded(name="k")),
                ("k", "started"),
                ("k", "queued", {"reason": "worker_lost"}),
                ("k", "started"),
                ("k", "succeeded"),
                ("k", "cancelled"),  # Dask forgets a key long after it ended
            ],
            skip_closed=True,
        )
        assert len({r.recorded_at for r in records}) == 1  # one append
        view = await runs.get(run.id)
        assert (view.state, view.containers["k"].state) == ("Running", "Succeeded")
        assert view.containers["k"].attempt == 2
        head = len(await runs.history(run.id))
        with pytest.raises(StreamClosed):  # without skip_closed: refused, nothing written
            await runs.advance_many(run.id, [("k", "started"), ("k", "cancelled")])
        with pytest.raises(lifecycle.UnknownContainer):
            await runs.advance_many(run.id, [("nope", "started")])
        assert len(await runs.history(run.id)) == head
