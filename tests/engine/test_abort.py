"""Aborting runs the engine drives: through the engine, and through the store from elsewhere."""

from __future__ import annotations

import anyio
import pytest
import structlog.testing

import lifecycle
from lifecycle import Container, Engine

from .conftest import facts

pytestmark = pytest.mark.anyio


class Gate:
    """Async callables that say when they run and note when they are cancelled."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.running = 0
        self.all_running = anyio.Event()
        self.cancelled: list[str] = []

    async def forever(self, name: str) -> None:
        self.running += 1
        if self.running == self.expected:
            self.all_running.set()
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise


@pytest.mark.parametrize(
    ("dialect", "operation", "state", "run_tail", "container_state"),
    [
        ("domino", None, "Stopped", ["StopRequested", "StoppingStarted", "Stopped"], "Stopped"),
        (
            "qualytics",
            "profile",
            "Aborted",
            ["StopRequested", "StoppingStarted", "Stopped"],
            "Aborted",
        ),
        ("datatailr", None, "Stopped", ["StopRequested", "StoppingStarted", "Stopped"], "Stopped"),
    ],
)
async def test_abort_per_dialect(  # noqa: PLR0917  (pytest passes the parameters)
    runs: lifecycle.AsyncRuns,
    dialect: str,
    operation: str | None,
    state: str,
    run_tail: list[str],
    container_state: str,
) -> None:
    gate = Gate(expected=2)
    async with Engine(runs, adapter="inprocess", max_parallel=2) as engine:
        run = await engine.submit(
            dialect,
            operation=operation,
            containers=[
                Container("a", call=gate.forever, args=("a",)),
                Container("b", call=gate.forever, args=("b",)),
                Container("later", call=gate.forever, args=("later",), depends_on=["a"]),
            ],
        )
        await gate.all_running.wait()
        view = await engine.abort(run.id, by="alice")
    assert sorted(gate.cancelled) == ["a", "b"]
    assert view.state == state
    assert view.reason == "user"
    assert {name: c.state for name, c in view.containers.items()} == dict.fromkeys(
        ("a", "b", "later"), container_state
    )
    assert (await facts(runs, run.id))[-3:] == run_tail
    assert (await facts(runs, run.id, "a"))[-3:] == ["StopRequested", "StoppingStarted", "Stopped"]
    stop = [
        r.event for r in await runs.history(run.id) if type(r.event).__name__ == "StopRequested"
    ]
    assert {getattr(s, "by", None) for s in stop} == {"alice"}
    assert await runs.store.leases() == []


async def test_abort_through_the_store_stops_the_work(runs: lifecycle.AsyncRuns) -> None:
    """``runs.abort`` (as another process would call it) ends the run in one append; the engine
    notices, cancels the work and writes nothing more."""
    gate = Gate(expected=1)
    async with Engine(runs, adapter="inprocess", watch_interval=0.02) as engine:
        run = await engine.submit(
            "domino", containers=[Container("a", call=gate.forever, args=("a",))]
        )
        await gate.all_running.wait()
        stopped = await runs.abort(run.id, by="other process")
        with anyio.fail_after(5):
            view = await engine.wait(run.id)
    assert gate.cancelled == ["a"]
    assert view == await runs.get(run.id)
    assert view.state == stopped.state == "Stopped"
    assert (await facts(runs, run.id, "a"))[-1] == "Stopped"


async def test_stop_request_recorded_elsewhere_is_carried_out(runs: lifecycle.AsyncRuns) -> None:
    from lifecycle import events as ev

    gate = Gate(expected=1)
    async with Engine(runs, adapter="inprocess", watch_interval=0.02) as engine:
        run = await engine.submit(
            "domino", containers=[Container("a", call=gate.forever, args=("a",))]
        )
        await gate.all_running.wait()
        await runs.record(run.id, ev.StopRequested(by="dashboard"))
        with anyio.fail_after(5):
            view = await engine.wait(run.id)
    assert gate.cancelled == ["a"]
    assert view.state == "Stopped"
    assert (await facts(runs, run.id))[-3:] == ["StopRequested", "StoppingStarted", "Stopped"]


async def test_abort_before_it_runs(runs: lifecycle.AsyncRuns) -> None:
    engine = Engine(runs, adapter="inprocess")  # not entered: nothing executes until wait()
    run = await engine.submit("qualytics", operation="scan", containers=[Container("a", call=int)])
    view = await engine.abort(run.id)
    assert view.state == "Aborted"
    assert await runs.store.leases() == []
    assert (await engine.wait(run.id)).state == "Aborted"


async def test_logs_carry_run_and_container(runs: lifecycle.AsyncRuns) -> None:
    with structlog.testing.capture_logs() as captured:
        async with Engine(runs, adapter="inprocess") as engine:
            run = await engine.submit("domino", containers=[Container("a", call=int)])
            await engine.wait(run.id)
    ended = [e for e in captured if e["event"] == "container ended"]
    assert ended == [
        {
            "event": "container ended",
            "log_level": "debug",
            "run_id": run.id,
            "dialect": "domino",
            "name": "",
            "container": "a",
            "state": "Succeeded",
            "fact": "ExecutionSucceeded",
        }
    ]
    assert any(e["event"] == "run ended" and e["run_id"] == run.id for e in captured)
