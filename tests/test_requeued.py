"""Retries (issue 13): ``Requeued`` takes a run or container from its running states back to its
waiting state, and the views count attempts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

import lifecycle
from lifecycle import InvalidTransition, Runs
from lifecycle import events as ev
from lifecycle.testing import histories

BUILT_IN = ["datatailr", "domino", "qualytics"]

# The facts that take each dialect's run from its start to a running state.
TO_RUNNING: dict[str, list[ev.Fact]] = {
    "datatailr": [ev.ResourcesRequested(), ev.ResourcesAssigned(), ev.ExecutionStarted()],
    "domino": [ev.ResourcesAssigned(), ev.PreparationStarted(), ev.ExecutionStarted()],
    "qualytics": [ev.ExecutionStarted()],
}
WAITING = {"datatailr": "Pending", "domino": "Queued", "qualytics": "Queued"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_retry_that_succeeds_is_a_success_without_warning(name: str) -> None:
    d = lifecycle.dialect(name)
    start = ev.Requested(dialect=name, operation="scan" if name == "qualytics" else "")
    again = [f for f in TO_RUNNING[name] if not isinstance(f, ev.ResourcesRequested)]
    facts = [start, *TO_RUNNING[name], ev.Requeued(reason="worker_lost")]
    view = lifecycle.fold(d, facts)
    assert (view.state, view.attempt, view.terminal) == (WAITING[name], 2, False)
    view = lifecycle.fold(d, [*facts, *again, ev.ExecutionSucceeded()])
    assert (view.outcome, view.attempt, view.warning) == ("succeeded", 2, False)


@pytest.mark.parametrize("name", ["datatailr", "domino"])
def test_a_second_start_without_requeued_is_refused(name: str) -> None:
    d = lifecycle.dialect(name)
    with pytest.raises(InvalidTransition, match="ExecutionStarted"):
        lifecycle.fold(d, [ev.Requested(dialect=name), *TO_RUNNING[name], ev.ExecutionStarted()])


def test_qualytics_tolerates_a_second_start_but_counts_no_attempt() -> None:
    """Documented disagreement: a Qualytics promote starts in Running and the engine still records
    ``ExecutionStarted`` there, so the table tolerates it; only ``Requeued`` counts an attempt."""
    facts = [ev.Requested(dialect="qualytics", operation="scan"), ev.ExecutionStarted()]
    view = lifecycle.fold("qualytics", [*facts, ev.ExecutionStarted()])
    assert (view.state, view.attempt) == ("Running", 1)


@pytest.mark.parametrize("name", BUILT_IN)
def test_requeued_is_refused_once_terminal_and_before_a_start(name: str) -> None:
    d = lifecycle.dialect(name)
    start = ev.Requested(dialect=name, operation="scan" if name == "qualytics" else "")
    with pytest.raises(InvalidTransition, match="Requeued"):
        lifecycle.fold(d, [start, ev.Requeued()])
    ended = [start, *TO_RUNNING[name], ev.ExecutionFailed(error="boom")]
    with pytest.raises(InvalidTransition, match="Requeued"):
        lifecycle.fold(d, [*ended, ev.Requeued()])


def test_domino_refuses_a_retry_once_a_stop_was_requested() -> None:
    facts = [ev.Requested(dialect="domino"), *TO_RUNNING["domino"], ev.StopRequested()]
    with pytest.raises(InvalidTransition, match="Requeued"):
        lifecycle.fold("domino", [*facts, ev.Requeued()])


def test_containers_count_their_own_attempts_through_the_run_service() -> None:
    with Runs() as runs:
        run = runs.create("datatailr", name="retry", containers=["a", "b"])
        runs.record_many(
            run.run_id,
            [
                (None, TO_RUNNING["datatailr"]),
                ("a", [ev.ExecutionStarted(), ev.Requeued(reason="retry"), ev.ExecutionStarted()]),
            ],
        )
        view = runs.get(run.run_id)
        assert (view.attempt, view.containers["a"].attempt, view.containers["b"].attempt) == (
            1,
            2,
            1,
        )
        assert [r.event for r in runs.history(run.run_id)][-2] == ev.Requeued(reason="retry")


@pytest.mark.parametrize("name", BUILT_IN)
def test_attempt_is_one_plus_the_retries_of_any_valid_history(name: str) -> None:
    d = lifecycle.dialect(name)

    @settings(max_examples=150, deadline=None)
    @given(histories(d, max_facts=25))
    def check(facts: list[ev.Fact]) -> None:
        view = lifecycle.fold(d, facts)
        assert view.attempt == 1 + sum(isinstance(f, ev.Requeued) for f in facts)

    check()
