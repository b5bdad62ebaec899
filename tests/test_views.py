"""The fold and the views: warnings, times, lineage, reasons, and the canonical agreement."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, STOP_SEQUENCE

BUILTIN = ["datatailr", "domino", "qualytics"]
OPERATION = {"datatailr": "run", "domino": "run", "qualytics": "scan"}


def rec(stream: str, version: int, position: int, fact: ev.Fact, second: int = 0) -> ev.Recorded:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=second)
    return ev.Recorded(
        stream=stream,
        version=version,
        position=position,
        event_id=f"e{position}",
        recorded_at=at,
        event=fact,  # type: ignore[arg-type]
    )


def test_qualytics_profile_warning_from_a_failed_container() -> None:
    records = [
        rec(
            "run-7",
            1,
            1,
            ev.Requested(
                dialect="qualytics",
                operation="profile",
                name="nightly",
                containers=("orders", "customers"),
            ),
            0,
        ),
        rec("run-7/orders", 1, 2, ev.Requested(dialect="qualytics", operation="profile"), 0),
        rec("run-7/customers", 1, 3, ev.Requested(dialect="qualytics", operation="profile"), 0),
        rec("run-7", 2, 4, ev.ExecutionStarted(), 1),
        rec("run-7/orders", 2, 5, ev.ExecutionStarted(), 2),
        rec("run-7/customers", 2, 6, ev.ExecutionStarted(), 2),
        rec("run-7/orders", 3, 7, ev.ExecutionSucceeded(), 3),
        rec("run-7/customers", 3, 8, ev.ExecutionFailed(error="no such table"), 4),
        rec("run-7", 3, 9, ev.ExecutionSucceeded(), 5),
    ]
    view = lifecycle.fold(None, records)
    assert (view.run_id, view.state, view.outcome, view.warning) == (
        7,
        "Success",
        "succeeded",
        True,
    )
    assert view.containers["customers"].state == "Failure"
    assert view.containers["customers"].reason == "no such table"
    assert view.created_at is not None and view.started_at is not None
    assert (view.started_at - view.created_at).seconds == 1
    assert view.ended_at is not None and (view.ended_at - view.created_at).seconds == 5
    assert view.position == 9 and view.version == 3 and view.id == 7


@pytest.mark.parametrize("level", ["warning", "error", "critical"])
def test_warning_from_a_log_entry(level: str) -> None:
    facts = [
        ev.Requested(dialect="qualytics", operation="sync"),
        ev.ExecutionStarted(),
        ev.LogRecorded(level=level, text="slow"),
        ev.ExecutionSucceeded(),
    ]
    assert lifecycle.fold("qualytics", facts).warning


def test_no_warning_from_info_logs_or_on_failure() -> None:
    base = [
        ev.Requested(dialect="qualytics", operation="sync"),
        ev.ExecutionStarted(),
        ev.LogRecorded(level="info"),
    ]
    assert not lifecycle.fold("qualytics", [*base, ev.ExecutionSucceeded()]).warning
    failed = lifecycle.fold(
        "qualytics", [*base, ev.LogRecorded(level="error"), ev.ExecutionFailed()]
    )
    assert failed.state == "Failure" and not failed.warning  # Warning is for successes only


def test_lineage_and_reasons() -> None:
    view = lifecycle.fold(
        "domino",
        [
            ev.Requested(
                dialect="domino",
                mode="rerun",
                original_run_id=4,
                root_run_id=2,
                job_version=3,
                params={"x": 1},
            ),
            ev.InfrastructureFailed(reason="start_timeout"),
        ],
    )
    assert (view.state, view.reason, view.mode) == ("Error", "start_timeout", "rerun")
    assert (view.original_run_id, view.root_run_id, view.job_version) == (4, 2, 3)
    assert view.params == {"x": 1}
    oom = lifecycle.fold(
        "datatailr",
        [ev.Requested(dialect="datatailr"), *START_SEQUENCE, ev.OutOfMemory(limit_bytes=2**20)],
    )
    assert oom.state == "Out of Memory" and oom.reason == "out of memory (limit 1048576 bytes)"


def test_another_dialect_can_view_a_history_that_fits() -> None:
    facts = [ev.Requested(dialect="domino"), *START_SEQUENCE, ev.ExecutionSucceeded()]
    assert (
        lifecycle.fold("qualytics", [ev.Requested(dialect="x", operation="scan"), *facts[1:]]).state
        == "Success"
    )
    assert lifecycle.fold("datatailr", facts).state == "Completed"


def test_projector_strict_false_keeps_the_first_error_per_run() -> None:
    records = [
        rec("run-1", 1, 1, ev.Requested(dialect="qualytics", operation="scan")),
        rec("run-2", 1, 2, ev.Requested(dialect="qualytics", operation="scan")),
        rec("run-1", 2, 3, ev.ExecutionSucceeded()),  # invalid: Queued -> Success
        rec("run-2", 2, 4, ev.ExecutionStarted()),
        rec("run-1", 3, 5, ev.ExecutionStarted()),  # ignored: run-1 already diverged
        rec("run-1", 4, 6, ev.LogRecorded()),  # ignored too, though Queued tolerates it
    ]
    projector = lifecycle.Projector(strict=False)
    projector.feed(records)
    assert set(projector.errors) == {1}
    record, error = projector.errors[1]
    assert record.position == 3 and error.state == "Queued"
    assert projector.view(2).state == "Running"
    assert (projector.view(1).state, projector.view(1).version) == ("Queued", 1)
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.Projector().feed(records)


@pytest.mark.parametrize("name", BUILTIN)
def test_terminal_states_absorb_every_fact(name: str) -> None:
    d = lifecycle.dialect(name)
    for state in d.terminal_states:
        assert d.table.rows[state] == {}, f"{name}: {state} accepts facts"


# -- canonical histories: all three dialects agree on the outcome category ------------------------

ENDINGS = st.sampled_from(["success", "failed", "oom", "infra", "stop"])


@st.composite
def canonical_histories(draw: st.DrawFn) -> list[ev.Fact]:
    ending = draw(ENDINGS)
    started = 4 if ending in ("success", "failed", "oom") else draw(st.integers(0, 4))
    facts: list[ev.Fact] = []
    for fact in START_SEQUENCE[:started]:
        facts.append(fact)
        facts.extend(
            ev.LogRecorded(level=draw(st.sampled_from(["info", "warning"])))
            for _ in range(draw(st.integers(0, 2)))
        )
    tail: tuple[ev.Fact, ...] = {
        "success": (ev.ExecutionSucceeded(),),
        "failed": (ev.ExecutionFailed(exit_code=1),),
        "oom": (ev.OutOfMemory(),),
        "infra": (ev.InfrastructureFailed(reason="engine_lost"),),
        "stop": STOP_SEQUENCE(),
    }[ending]
    return [*facts, *tail]


@given(canonical_histories())
def test_canonical_histories_fit_every_dialect_and_agree(body: list[ev.Fact]) -> None:
    views = [
        lifecycle.fold(n, [ev.Requested(dialect=n, operation=OPERATION[n]), *body]) for n in BUILTIN
    ]
    assert all(v.terminal for v in views)
    assert len({v.outcome for v in views}) == 1, [(v.dialect, v.state) for v in views]
    assert len({v.warning for v in views}) == 1


@given(canonical_histories(), st.integers(min_value=0, max_value=30))
def test_canonical_prefixes_fit_and_stay_active(body: list[ev.Fact], cut: int) -> None:
    for n in BUILTIN:
        view = lifecycle.fold(n, [ev.Requested(dialect=n, operation=OPERATION[n]), *body[:cut]])
        assert view.terminal == (cut >= len(body))
