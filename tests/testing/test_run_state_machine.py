"""RunStateMachine: every built-in dialect and a user-declared one through the stateful test, an
integration that goes through its own service instance, and broken integrations it must catch.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import lifecycle
from lifecycle import events as ev
from lifecycle._dialects import _REGISTRY
from lifecycle.testing._machine import RunStateMachine


def _resend_keeps_the_live_view() -> bool:
    """Whether re-sending an acknowledged append (still valid in the current state) leaves
    ``get`` equal to a replay: the store writes nothing, so the live view must not move."""
    with lifecycle.Runs("memory://") as runs:
        run = runs.create("qualytics", operation="sync")
        ids = [ev.new_event_id()]
        runs.record(run.id, [ev.ExecutionStarted()], event_ids=ids)
        runs.record(run.id, [ev.ExecutionStarted()], event_ids=ids)  # tolerated in Running
        return runs.get(run.id) == lifecycle.fold(None, runs.history(run.id))


STATEFUL = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class _WithoutResend(RunStateMachine):
    """The machine without its re-send rule (a subclass drops a rule by overriding it plain)."""

    def resend(self, data: object) -> None:
        pass


def test_resending_an_append_keeps_the_live_view() -> None:
    assert _resend_keeps_the_live_view()


@pytest.mark.parametrize("name", ["datatailr", "domino", "qualytics"])
def test_built_in_dialect(name: str) -> None:
    class Machine(RunStateMachine):
        dialects = (name,)

    run_state_machine_as_test(Machine, settings=STATEFUL)


MINE = lifecycle.Dialect(
    name="mine",
    states=[
        lifecycle.State("Waiting"),
        lifecycle.State("Working"),
        lifecycle.State("Done", outcome="succeeded"),
        lifecycle.State("Broken", outcome="failed"),
        lifecycle.State("Cancelled", outcome="cancelled"),
    ],
    initial="Waiting",
    transitions=[
        {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
        {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
        {
            "trigger": ["ExecutionFailed", "OutOfMemory", "InfrastructureFailed"],
            "source": "Working",
            "dest": "Broken",
        },
        {"trigger": "Stopped", "source": ["Waiting", "Working"], "dest": "Cancelled"},
    ],
    tolerate={"LogRecorded": ["Waiting", "Working"], "StopRequested": ["Waiting", "Working"]},
)


@pytest.fixture
def mine(monkeypatch: pytest.MonkeyPatch) -> lifecycle.Dialect:
    """``mine`` registered for one test (the registry is process-wide)."""
    monkeypatch.setitem(_REGISTRY, "mine", MINE)
    return MINE


@pytest.mark.usefixtures("mine")
def test_user_declared_dialect() -> None:
    class Machine(RunStateMachine):
        dialects = ("mine",)

    run_state_machine_as_test(Machine, settings=STATEFUL)


class OrchestratorMachine(RunStateMachine):
    """An integration with its own service instance: it writes through one ``Runs``, the
    invariants read through another on the same store (so caches must catch up)."""

    dialects = ("qualytics", "domino")

    def make_runs(self) -> lifecycle.Runs:
        store = lifecycle.MemoryStore()
        self.orchestrator = lifecycle.Runs(store)
        self.orchestrator.__enter__()
        return lifecycle.Runs(store)

    def create(self, dialect: str, operation: str | None, containers: Sequence[str]) -> int:
        return self.orchestrator.create(dialect, operation=operation, containers=containers).id

    def append(
        self,
        run_id: int,
        facts: Sequence[ev.Fact],
        *,
        container: str | None,
        event_ids: Sequence[str],
    ) -> list[ev.Recorded]:
        return self.orchestrator.record(run_id, facts, container=container, event_ids=event_ids)

    def abort(self, run_id: int) -> None:
        self.orchestrator.abort(run_id)

    def teardown(self) -> None:
        self.orchestrator.close()
        super().teardown()


def test_an_integration_through_its_own_service() -> None:
    run_state_machine_as_test(OrchestratorMachine, settings=STATEFUL)


# -- it catches broken integrations ---------------------------------------------------------------

CATCH = settings(STATEFUL, phases=[Phase.generate], report_multiple_bugs=False)


class _Isolated(_WithoutResend):
    """Re-sending is left out, so each broken integration below fails for its own reason."""

    dialects = ("qualytics",)


def test_catches_an_integration_that_swallows_rejections() -> None:
    class Swallows(_Isolated):
        def append(
            self,
            run_id: int,
            facts: Sequence[ev.Fact],
            *,
            container: str | None,
            event_ids: Sequence[str],
        ) -> list[ev.Recorded]:
            try:
                return super().append(run_id, facts, container=container, event_ids=event_ids)
            except lifecycle.InvalidTransition:
                return []  # "logged and ignored"

    with pytest.raises(AssertionError, match="was accepted in"):
        run_state_machine_as_test(Swallows, settings=CATCH)


def test_catches_an_integration_that_drops_facts() -> None:
    class Drops(_Isolated):
        def append(
            self,
            run_id: int,
            facts: Sequence[ev.Fact],
            *,
            container: str | None,
            event_ids: Sequence[str],
        ) -> list[ev.Recorded]:
            # keeps only the first fact of a batch, yet reports success
            records = super().append(
                run_id, facts[:1], container=container, event_ids=event_ids[:1]
            )
            return records + [records[-1]] * (len(facts) - 1)

    with pytest.raises(AssertionError):
        run_state_machine_as_test(Drops, settings=CATCH)


def test_catches_an_integration_that_writes_without_checking() -> None:
    class Unchecked(_Isolated):
        def append(
            self,
            run_id: int,
            facts: Sequence[ev.Fact],
            *,
            container: str | None,
            event_ids: Sequence[str],
        ) -> list[ev.Recorded]:
            stream = f"run-{run_id}" + (f"/{container}" if container else "")
            write = lifecycle.Write(stream=stream, events=tuple(facts), event_ids=tuple(event_ids))
            store = self.service.runs.store
            return self.service._call(store.append, [write])  # type: ignore[no-any-return]

    with pytest.raises(AssertionError, match="was accepted in"):
        run_state_machine_as_test(Unchecked, settings=CATCH)
