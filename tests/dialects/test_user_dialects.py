"""User-declared dialects (DESIGN §3): the example declares, registers, folds, draws and drives a
machine; every validation rule raises ``InvalidDialect`` naming the problem."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._dialects import _REGISTRY


def declare_mine() -> lifecycle.Dialect:
    """The example of DESIGN §3 (only the line breaks differ)."""
    return lifecycle.Dialect(
        name="mine",
        states=[
            lifecycle.State("Waiting"),
            lifecycle.State("Working"),
            lifecycle.State("Done", outcome="succeeded"),
            lifecycle.State("Broken", outcome="failed"),
            lifecycle.State("Cancelled", outcome="cancelled"),
        ],
        initial="Waiting",  # or {operation: state, "*": state}
        transitions=[  # the transitions library's own dict format; triggers are fact names
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
def mine(monkeypatch: pytest.MonkeyPatch) -> Iterator[lifecycle.Dialect]:
    """``mine``, registered for the test only (the registry is process-wide)."""
    monkeypatch.delitem(_REGISTRY, "mine", raising=False)
    d = lifecycle.register_dialect(declare_mine())
    yield d
    _REGISTRY.pop("mine", None)


# -- the example ----------------------------------------------------------------------------------


def test_the_example_registers_and_is_found_by_name(mine: lifecycle.Dialect) -> None:
    assert lifecycle.dialect("mine") is mine
    assert "mine" in lifecycle.dialects()
    assert lifecycle.register_dialect(mine) is mine  # registering it again is fine
    with pytest.raises(lifecycle.InvalidDialect, match="already registered"):
        lifecycle.register_dialect(declare_mine())
    assert lifecycle.register_dialect(declare_mine(), replace=True) is lifecycle.dialect("mine")


def test_the_example_folds(mine: lifecycle.Dialect) -> None:
    facts: list[ev.Fact] = [
        ev.Requested(dialect="mine"),
        ev.LogRecorded(text="waiting"),
        ev.ExecutionStarted(),
        ev.LogRecorded(level="warning", text="slow"),
        ev.ExecutionSucceeded(),
    ]
    view = lifecycle.fold(None, facts)  # the dialect named by Requested, found by name
    assert (view.state, view.outcome, view.terminal, view.warning) == (
        "Done",
        "succeeded",
        True,
        True,
    )
    assert lifecycle.fold(mine, facts[:3]).state == "Working"
    with pytest.raises(lifecycle.StreamClosed):
        lifecycle.fold(mine, [*facts, ev.LogRecorded()])  # terminal is final
    with pytest.raises(lifecycle.InvalidTransition, match="Accepted in 'Waiting'"):
        lifecycle.fold(mine, [facts[0], ev.ExecutionSucceeded()])  # Waiting straight to Done


@pytest.mark.parametrize(
    ("fact", "state"),
    [
        (ev.ExecutionFailed(error="boom"), "Broken"),
        (ev.OutOfMemory(), "Broken"),
        (ev.InfrastructureFailed(reason="worker_lost"), "Broken"),
        (ev.Stopped(), "Cancelled"),
    ],
)
def test_every_arrow_of_the_example(mine: lifecycle.Dialect, fact: ev.Fact, state: str) -> None:
    assert (
        lifecycle.fold(mine, [ev.Requested(dialect="mine"), ev.ExecutionStarted(), fact]).state
        == state
    )


def test_the_example_draws_a_diagram(mine: lifecycle.Dialect) -> None:
    chart = mine.to_mermaid()
    assert chart.startswith("flowchart LR")
    assert 'Waiting -->|"ExecutionStarted"| Working' in chart
    assert (
        'Working -.->|"ExecutionFailed<br/>OutOfMemory<br/>InfrastructureFailed"| Broken' in chart
    )
    assert "class Done succeeded" in chart
    assert "LogRecorded" not in chart  # tolerated facts are not drawn


def test_the_example_builds_a_machine_with_callbacks(mine: lifecycle.Dialect) -> None:
    entered: list[tuple[str, str]] = []

    class Model:
        state: str

        def on_enter_Broken(self, event: Any) -> None:  # transitions' naming
            entered.append((event.state.name, type(event.kwargs["fact"]).__name__))

    model = Model()
    mine.machine(model)
    assert model.state == lifecycle.START
    for fact in (ev.Requested(dialect="mine"), ev.ExecutionStarted(), ev.OutOfMemory()):
        assert model.trigger(type(fact).__name__, fact=fact)  # type: ignore[attr-defined]
    assert model.state == "Broken"
    assert entered == [("Broken", "OutOfMemory")]


def test_the_example_passes_the_kit_s_property_tests(mine: lifecycle.Dialect) -> None:
    from lifecycle.testing._machine import check_dialect

    check_dialect(mine, max_examples=30)


def test_runs_of_the_example(mine: lifecycle.Dialect) -> None:
    with lifecycle.Runs("memory://") as runs:
        run = runs.create("mine", name="first")
        runs.record(run.id, [ev.ExecutionStarted(), ev.ExecutionSucceeded()])
        assert runs.get(run.id).state == "Done"
        with pytest.raises(lifecycle.StreamClosed):
            runs.record(run.id, ev.LogRecorded())
        other = runs.create("mine")
        assert runs.abort(other.id).state == "Cancelled"


# -- validation -----------------------------------------------------------------------------------

S = lifecycle.State
STATES = [S("Waiting"), S("Working"), S("Done", outcome="succeeded"), S("Broken", outcome="failed")]
MOVES: list[dict[str, Any]] = [
    {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
    {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
    {"trigger": "ExecutionFailed", "source": "Working", "dest": "Broken"},
]


def declare(
    states: Sequence[lifecycle.State] = STATES,
    transitions: Sequence[dict[str, Any]] = MOVES,
    **kwargs: Any,
) -> lifecycle.Dialect:
    kwargs.setdefault("initial", "Waiting")
    return lifecycle.Dialect("t", states, transitions=transitions, **kwargs)


def test_the_base_of_the_cases_below_is_valid() -> None:
    assert declare().terminal_states == ["Done", "Broken"]


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "unreachable state": (
        {"states": [*STATES, S("Orphan")]},
        r"state\(s\) \['Orphan'\] cannot be reached from \[\*\]",
    ),
    "active state with no way to a terminal one": (
        {
            "states": [*STATES, S("Limbo")],
            "transitions": [
                *MOVES,
                {"trigger": "StopRequested", "source": "Waiting", "dest": "Limbo"},
            ],
        },
        r"active state\(s\) \['Limbo'\] have no path to a terminal state",
    ),
    "a cycle with no way out": (
        {
            "states": [*STATES, S("Ping"), S("Pong")],
            "transitions": [
                *MOVES,
                {"trigger": "StopRequested", "source": "Waiting", "dest": "Ping"},
                {"trigger": "StoppingStarted", "source": "Ping", "dest": "Pong"},
                {"trigger": "StoppingStarted", "source": "Pong", "dest": "Ping"},
            ],
        },
        r"\['Ping', 'Pong'\] have no path to a terminal state",
    ),
    "transition out of a terminal state": (
        {
            "transitions": [
                *MOVES,
                {"trigger": "ExecutionStarted", "source": "Done", "dest": "Working"},
            ]
        },
        "ExecutionStarted leaves terminal state 'Done'; terminal is final",
    ),
    "unknown fact name": (
        {
            "transitions": [
                *MOVES,
                {"trigger": "ExecutionExploded", "source": "Working", "dest": "Broken"},
            ]
        },
        "transition #3 names fact 'ExecutionExploded', which does not exist",
    ),
    "unknown fact tolerated": (
        {"tolerate": {"Exploded": ["Working"]}},
        r"tolerate\['Exploded'\] names fact 'Exploded', which does not exist",
    ),
    "unknown destination state": (
        {
            "transitions": [
                *MOVES,
                {"trigger": "OutOfMemory", "source": "Working", "dest": "Nowhere"},
            ]
        },
        "transition #3 names state 'Nowhere', which is not declared",
    ),
    "unknown source state": (
        {
            "transitions": [
                *MOVES,
                {"trigger": "OutOfMemory", "source": "Nowhere", "dest": "Broken"},
            ]
        },
        "transition #3 names state 'Nowhere', which is not declared",
    ),
    "unknown tolerated state": (
        {"tolerate": {"LogRecorded": ["Nowhere"]}},
        r"tolerate\['LogRecorded'\] names state 'Nowhere', which is not declared",
    ),
    "unknown initial state": (
        {"initial": "Nowhere"},
        r"initial\['\*'\] names state 'Nowhere', which is not declared",
    ),
    "two initial states for one operation": (
        {"transitions": [*MOVES, {"trigger": "Requested", "source": "[*]", "dest": "Working"}]},
        r"Requested from '\[\*\]' goes both to 'Working' and to 'Waiting'",
    ),
    "missing initial state for an operation": (
        {"initial": {"sync": "Waiting"}, "operations": ["sync", "scan"]},
        r"no initial state for operation\(s\) \['scan'\]",
    ),
    "missing default initial state": (
        {"initial": {"sync": "Waiting"}},
        "initial has no '\\*' default and operations are not listed",
    ),
    "initial state for an unknown operation": (
        {"initial": {"other": "Waiting", "*": "Waiting"}, "operations": ["sync"]},
        "initial names operation 'other', which is not one of sync",
    ),
    "terminal initial state": ({"initial": "Done"}, "initial state 'Done' is terminal"),
    "ambiguous move": (
        {
            "transitions": [
                *MOVES,
                {"trigger": "ExecutionFailed", "source": "Working", "dest": "Done"},
            ]
        },
        "ExecutionFailed from 'Working' goes both to 'Broken' and to 'Done'; make one of them",
    ),
    "a fact both handled and tolerated": (
        {"tolerate": {"ExecutionFailed": ["Working"]}},
        r"ExecutionFailed from 'Working' goes both to 'Broken' and to '\(tolerated\)'",
    ),
    "no terminal state": (
        {
            "states": [S("Waiting"), S("Working")],
            "transitions": [
                {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"}
            ],
        },
        "no terminal state",
    ),
    "state declared twice": (
        {"states": [*STATES, S("Waiting")]},
        "state 'Waiting' is declared twice",
    ),
    "unknown outcome": (
        {"states": [*STATES, S("Odd", outcome="weird")]},  # type: ignore[arg-type]
        "state 'Odd' has outcome 'weird'",
    ),
    "the pseudo-state as a state": (
        {"states": [*STATES, S("[*]")]},
        r"'\[\*\]' cannot be a state name",
    ),
    "a transition without dest": (
        {"transitions": [*MOVES, {"trigger": "OutOfMemory", "source": "Working"}]},
        "transition #3 must have trigger, source and dest",
    ),
    "a guard on a field the fact lacks": (
        {
            "transitions": [
                *MOVES,
                {
                    "trigger": "OutOfMemory",
                    "source": "Working",
                    "dest": "Broken",
                    "when": {"colour": "red"},
                },
            ]
        },
        r"guards on OutOfMemory.colour, which is not a field",
    ),
    "another fact leaving the start": (
        {"transitions": [*MOVES, {"trigger": "LogRecorded", "source": "[*]", "dest": "Working"}]},
        r"only Requested can leave \[\*\], not LogRecorded",
    ),
    "unknown aggregation": ({"aggregation": "maybe"}, "aggregation must be 'fail' or 'warn'"),
}


@pytest.mark.parametrize(("changes", "message"), INVALID.values(), ids=INVALID.keys())
def test_an_unsound_declaration_is_rejected_naming_the_problem(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(lifecycle.InvalidDialect, match=message) as caught:
        declare(**changes)
    assert str(caught.value).startswith("t: "), "the message names the dialect"
    assert isinstance(caught.value, lifecycle.LifecycleError)


def test_a_container_dialect_cannot_have_containers_of_its_own() -> None:
    inner = declare(containers=declare())
    with pytest.raises(lifecycle.InvalidDialect, match="cannot have containers of its own"):
        declare(containers=inner)


def test_only_dialects_can_be_registered() -> None:
    with pytest.raises(lifecycle.InvalidDialect, match=r"takes a lifecycle\.Dialect"):
        lifecycle.register_dialect("mine")  # type: ignore[arg-type]


def test_unknown_dialect_names_the_registered_ones() -> None:
    with pytest.raises(lifecycle.UnknownDialect, match=r"registered: .*datatailr"):
        lifecycle.dialect("no-such-dialect")


def test_an_unhashable_guard_value_is_rejected_as_invalid() -> None:
    guarded = {"trigger": "ExecutionFailed", "source": "Waiting", "dest": "Broken",
               "when": {"traceback": ["x"]}}  # fmt: skip
    with pytest.raises(lifecycle.InvalidDialect, match="must be a plain scalar"):
        declare(transitions=[*MOVES, guarded])


def test_guarded_moves_by_operation() -> None:
    d = declare(
        states=[*STATES, S("Fast")],
        transitions=[*MOVES, {"trigger": "ExecutionSucceeded", "source": "Fast", "dest": "Done"}],
        initial={"quick": "Fast", "*": "Waiting"},
        operations=["quick", "slow"],
    )
    assert d.initial_state("quick") == "Fast"
    assert d.initial_state("slow") == "Waiting"
    with pytest.raises(lifecycle.InvalidTransition, match="Operations of t: quick, slow"):
        d.initial_state("other")


@pytest.mark.parametrize("name", ["", " ", "\t", " mine", "mine ", None, 3])
def test_a_dialect_needs_a_name(name: Any) -> None:
    """#11.6: ``Dialect(name="")`` was accepted (and registered, and written into facts)."""
    with pytest.raises(lifecycle.InvalidDialect, match="a dialect's name must be"):
        lifecycle.Dialect(name, STATES, transitions=MOVES, initial="Waiting")


@pytest.mark.parametrize("name", ["", " ", "Waiting "])
def test_blank_state_and_operation_names_are_rejected(name: str) -> None:
    blank = [S(name), *STATES]
    with pytest.raises(lifecycle.InvalidDialect, match="cannot be a state name"):
        declare(states=blank)
    with pytest.raises(lifecycle.InvalidDialect, match="cannot be an operation name"):
        declare(operations=["run", name], initial={"*": "Waiting"})
    with pytest.raises(lifecycle.InvalidDialect, match="names fact"):
        declare(transitions=[*MOVES, {"trigger": name, "source": "Waiting", "dest": "Done"}])
