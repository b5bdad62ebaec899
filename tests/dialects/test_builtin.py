"""Every arrow drawn or described in the seeds is accepted; the obviously wrong moves are not.

Each row is a path of facts from ``Requested``; the test folds it and checks the state after
every fact, so a row checks each arrow along the way.
"""

from __future__ import annotations

import pytest

import lifecycle
from lifecycle import events as ev

R = ev.Requested
RR, RA = ev.ResourcesRequested(), ev.ResourcesAssigned()
PREP, PULL, EXEC = ev.PreparationStarted(), ev.ImagePullStarted(), ev.ExecutionStarted()
OK, FAIL, OOM = ev.ExecutionSucceeded(), ev.ExecutionFailed(error="boom"), ev.OutOfMemory()
INFRA, STOP = ev.InfrastructureFailed(reason="worker_lost"), ev.Stopped()
LOG = ev.LogRecorded(text="hello")

Path = list[tuple[ev.Fact, str]]

DATATAILR: dict[str, Path] = {
    "build ok then run to Completed": [
        (R(dialect="datatailr", build=True), "Building"),
        (ev.BuildStarted(image="img"), "Building"),
        (ev.BuildSucceeded(image="img", version=3), "Ready"),
        (RR, "Pending"),
        (RA, "Starting"),
        (EXEC, "Running"),
        (LOG, "Running"),
        (OK, "Completed"),
    ],
    "build fails: Created": [
        (R(dialect="datatailr", build=True), "Building"),
        (ev.BuildFailed(reason="bad dependency"), "Created"),
    ],
    "no build: starts Ready": [(R(dialect="datatailr"), "Ready")],
    "scheduled then pending": [
        (R(dialect="datatailr"), "Ready"),
        (ev.ScheduleArmed(), "Scheduled"),
        (RR, "Pending"),
    ],
    "scheduled then expired": [
        (R(dialect="datatailr"), "Ready"),
        (ev.ScheduleArmed(), "Scheduled"),
        (ev.ScheduleExpired(), "Expired"),
    ],
    "ready then expired": [(R(dialect="datatailr"), "Ready"), (ev.ScheduleExpired(), "Expired")],
    "code raises: Failed": [
        (R(dialect="datatailr"), "Ready"),
        (RR, "Pending"),
        (RA, "Starting"),
        (EXEC, "Running"),
        (FAIL, "Failed"),
    ],
    "out of memory": [
        (R(dialect="datatailr"), "Ready"),
        (RR, "Pending"),
        (RA, "Starting"),
        (EXEC, "Running"),
        (OOM, "Out of Memory"),
    ],
    "infrastructure while pending: Failed": [
        (R(dialect="datatailr"), "Ready"),
        (RR, "Pending"),
        (INFRA, "Failed"),
    ],
    "stopped from the dashboard (extension)": [
        (R(dialect="datatailr"), "Ready"),
        (RR, "Pending"),
        (RA, "Starting"),
        (EXEC, "Running"),
        (ev.StopRequested(), "Running"),
        (STOP, "Stopped"),
    ],
}

DOMINO: dict[str, Path] = {
    "custom environment: the whole way": [
        (R(dialect="domino"), "Queued"),
        (RR, "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (ev.BuildStarted(), "Building"),
        (ev.BuildSucceeded(), "Building"),
        (PULL, "Pulling"),
        (EXEC, "Running"),
        (ev.FinishingStarted(), "Finishing"),
        (OK, "Succeeded"),
    ],
    "cached image: Preparing to Running": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (EXEC, "Running"),
        (OK, "Succeeded"),
    ],
    "pull without build": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (PULL, "Pulling"),
        (EXEC, "Running"),
        (FAIL, "Failed"),
    ],
    "build fails": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (ev.BuildStarted(), "Building"),
        (ev.BuildFailed(), "Failed"),
    ],
    "manual stop while running": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (EXEC, "Running"),
        (ev.StopRequested(by="ann"), "StopRequested"),
        (ev.StoppingStarted(), "Stopping"),
        (STOP, "Stopped"),
    ],
    "stop while queued, nothing to sync": [
        (R(dialect="domino"), "Queued"),
        (ev.StopRequested(), "StopRequested"),
        (STOP, "Stopped"),
    ],
    "out of memory is a code problem": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (EXEC, "Running"),
        (OOM, "Failed"),
    ],
    "problem outside the code: Error": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (INFRA, "Error"),
    ],
    "finishing can fail": [
        (R(dialect="domino"), "Queued"),
        (RA, "Scheduled"),
        (PREP, "Preparing"),
        (EXEC, "Running"),
        (ev.FinishingStarted(), "Finishing"),
        (FAIL, "Failed"),
    ],
}

QUALYTICS: dict[str, Path] = {
    "worker picks up, all containers processed": [
        (R(dialect="qualytics", operation="scan"), "Queued"),
        (EXEC, "Running"),
        (OK, "Success"),
    ],
    "unrecoverable error": [
        (R(dialect="qualytics", operation="sync"), "Queued"),
        (EXEC, "Running"),
        (FAIL, "Failure"),
    ],
    "out of memory": [
        (R(dialect="qualytics", operation="export"), "Queued"),
        (EXEC, "Running"),
        (OOM, "Failure"),
    ],
    "abort while queued": [
        (R(dialect="qualytics", operation="profile"), "Queued"),
        (ev.StopRequested(), "Queued"),
        (STOP, "Aborted"),
    ],
    "abort while running": [
        (R(dialect="qualytics", operation="materialize"), "Queued"),
        (EXEC, "Running"),
        (STOP, "Aborted"),
    ],
    "promote skips Queued": [
        (R(dialect="qualytics", operation="promote"), "Running"),
        (OK, "Success"),
    ],
    "promote aborted": [
        (R(dialect="qualytics", operation="promote"), "Running"),
        (STOP, "Aborted"),
    ],
    "never starts (extension)": [
        (R(dialect="qualytics", operation="external_scan"), "Queued"),
        (INFRA, "Failure"),
    ],
}

CASES = [
    pytest.param(name, path, id=f"{name}: {label}")
    for name, table in (("datatailr", DATATAILR), ("domino", DOMINO), ("qualytics", QUALYTICS))
    for label, path in table.items()
]


@pytest.mark.parametrize(("name", "path"), CASES)
def test_seed_arrows_are_accepted(name: str, path: Path) -> None:
    d = lifecycle.dialect(name)
    for i in range(1, len(path) + 1):
        view = lifecycle.fold(d, [fact for fact, _ in path[:i]])
        assert view.state == path[i - 1][1], f"after {type(path[i - 1][0]).__name__}"
    assert view.version == len(path)


WRONG: list[tuple[str, list[ev.Fact], ev.Fact]] = [
    ("qualytics", [R(dialect="qualytics", operation="scan")], OK),  # Queued straight to Success
    ("qualytics", [R(dialect="qualytics", operation="scan"), EXEC, OK], EXEC),  # out of terminal
    ("qualytics", [R(dialect="qualytics", operation="scan"), EXEC, FAIL], LOG),  # log frozen
    ("qualytics", [R(dialect="qualytics", operation="promote")], R(dialect="qualytics")),
    ("qualytics", [], R(dialect="qualytics", operation="delete")),  # not an operation
    ("qualytics", [], EXEC),  # no Requested first
    ("domino", [R(dialect="domino")], OK),  # Queued straight to Succeeded
    ("domino", [R(dialect="domino")], ev.StoppingStarted()),  # Stopping needs StopRequested
    ("domino", [R(dialect="domino"), RA, PREP, EXEC, OK], STOP),  # out of terminal
    ("domino", [R(dialect="domino"), RA], EXEC),  # Scheduled straight to Running
    ("datatailr", [R(dialect="datatailr")], EXEC),  # Ready straight to Running
    ("datatailr", [R(dialect="datatailr")], OK),
    ("datatailr", [R(dialect="datatailr", build=True)], RR),  # must build first
    ("datatailr", [R(dialect="datatailr", build=True), ev.BuildFailed()], ev.BuildSucceeded()),
    ("datatailr", [R(dialect="datatailr"), RR, RA, EXEC, OOM], STOP),
]


@pytest.mark.parametrize(
    ("name", "prefix", "fact"),
    WRONG,
    ids=[f"{n}-{i}-{type(f).__name__}" for i, (n, _, f) in enumerate(WRONG)],
)
def test_wrong_moves_are_rejected(name: str, prefix: list[ev.Fact], fact: ev.Fact) -> None:
    d = lifecycle.dialect(name)
    view = lifecycle.fold(d, prefix) if prefix else None
    with pytest.raises(lifecycle.InvalidTransition) as info:
        lifecycle.fold(d, [*prefix, fact])
    assert info.value.fact == type(fact).__name__
    assert info.value.dialect == name
    if view is not None:
        assert info.value.state == view.state
        if view.terminal:
            assert isinstance(info.value, lifecycle.StreamClosed)


def test_error_message_says_what_is_accepted() -> None:
    with pytest.raises(
        lifecycle.InvalidTransition, match=r"Accepted in 'Queued': .*ExecutionStarted"
    ):
        lifecycle.fold("qualytics", [R(dialect="qualytics", operation="scan"), OK])


@pytest.mark.parametrize("name", ["datatailr", "domino", "qualytics"])
def test_state_names_are_the_seeds(name: str) -> None:
    expected = {
        "datatailr": {
            "Building",
            "Created",
            "Ready",
            "Scheduled",
            "Pending",
            "Starting",
            "Running",
            "Completed",
            "Failed",
            "Out of Memory",
            "Expired",
            "Stopped",
        },
        "domino": {
            "Queued",
            "Scheduled",
            "Preparing",
            "Building",
            "Pulling",
            "Running",
            "Finishing",
            "Succeeded",
            "StopRequested",
            "Stopping",
            "Stopped",
            "Failed",
            "Error",
        },
        "qualytics": {"Queued", "Running", "Success", "Failure", "Aborted"},
    }[name]
    assert set(lifecycle.dialect(name).states) == expected


def test_outcomes_and_extensions() -> None:
    dt = lifecycle.dialect("datatailr")
    assert dt.states["Created"].outcome == "failed"
    assert dt.states["Expired"].outcome == "cancelled"
    assert dt.states["Stopped"].extension
    q = lifecycle.dialect("qualytics")
    assert [s for s in q.states if q.states[s].terminal] == ["Success", "Failure", "Aborted"]
    assert q.has_containers("profile") and q.has_containers("scan")
    assert not q.has_containers("sync") and not q.has_containers("promote")
    assert q.aggregation == "warn" and dt.aggregation == "fail"
    assert q.containers is not None and set(q.containers.states) == set(q.states)


def test_mermaid_draws_every_move() -> None:
    text = lifecycle.dialect("qualytics").to_mermaid()
    assert text.startswith("flowchart LR")
    assert 'Queued -->|"worker picks up the Run"| Running' in text
    assert 'Running -.->|"user clicks Abort"| Aborted' in text
    assert "Out_of_Memory" in lifecycle.dialect("datatailr").to_mermaid()


def test_machine_bridge_follows_the_same_table() -> None:
    model = lifecycle.dialect("qualytics").machine()
    for fact in [R(dialect="qualytics", operation="promote"), LOG, OK]:
        assert model.trigger(type(fact).__name__, fact=fact)
    assert model.state == "Success"


def test_registry() -> None:
    assert set(lifecycle.dialects()) >= {"datatailr", "domino", "qualytics"}
    with pytest.raises(lifecycle.UnknownDialect, match="registered: datatailr, domino"):
        lifecycle.dialect("airflow")
    with pytest.raises(lifecycle.InvalidDialect, match="already registered"):
        lifecycle.register_dialect(
            lifecycle.Dialect(
                name="domino",
                states=[lifecycle.State("A"), lifecycle.State("B", "succeeded")],
                initial="A",
                transitions=[{"trigger": "ExecutionSucceeded", "source": "A", "dest": "B"}],
            )
        )
