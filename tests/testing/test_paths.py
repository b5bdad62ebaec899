"""Path generation over dialect graphs: shortest paths, simple paths, a transition cover, and
their use as pytest parameters."""

from __future__ import annotations

import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._dialects import START
from lifecycle.testing._paths import Path, moves, paths, walk

BUILT_IN = ["datatailr", "domino", "qualytics"]


def _changes(d: lifecycle.Dialect, operation: str | None = None) -> set[tuple[str, str, str]]:
    """Every state-changing move of the table (with its guard, as a label)."""
    return {
        (m.source, m.label, m.dest)
        for state in [START, *d.states]
        for m in moves(d, state, operation=operation)
        if not m.tolerated
    }


def _steps(path: Path) -> set[tuple[str, str, str]]:
    states = [START, *path.states]
    return set(zip(states, path.labels, path.states, strict=False))


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("kind", ["shortest", "simple", "transitions"])
def test_every_path_folds_to_the_state_it_names(name: str, kind: str) -> None:
    d = lifecycle.dialect(name)
    found = paths(d, kind)  # type: ignore[arg-type]
    assert found
    for path in found:
        assert isinstance(path.facts[0], ev.Requested)
        assert walk(d, path.facts) == list(path.states)
        assert lifecycle.fold(d, path.facts).state == path.final
        # no tolerated facts: every fact changes the state
        assert all(a != b for a, b in zip([START, *path.states], path.states, strict=False))
    assert len({p.id for p in found}) == len(found), "ids are unique"


@pytest.mark.parametrize("name", BUILT_IN)
def test_shortest_paths_reach_every_state_by_a_shortest_walk(name: str) -> None:
    d = lifecycle.dialect(name)
    found = {p.final: p for p in paths(d, "shortest")}
    assert set(found) == set(d.states)
    # breadth first: no path is longer than the one to its parent state plus one
    for path in found.values():
        if len(path.states) > 1:
            assert len(found[path.states[-2]].facts) == len(path.facts) - 1


def test_shortest_paths_of_domino() -> None:
    by_state = {p.final: p.id for p in paths("domino", "shortest")}
    assert by_state["Succeeded"] == "Queued->Scheduled->Preparing->Running->Succeeded"
    assert by_state["Stopped"] == "Queued->StopRequested->Stopped"
    assert by_state["Queued"] == "Queued"


def test_shortest_paths_of_one_operation() -> None:
    promote = {p.final: p for p in paths("qualytics", "shortest", operation="promote")}
    # promote starts Running: it reaches Queued only by a retry (issue 13)
    assert promote["Queued"].id == "Running->Queued"
    assert promote["Queued"].labels[-1] == "Requeued"
    assert promote["Success"].id == "Running->Success"
    assert promote["Success"].facts[0] == ev.Requested(dialect="qualytics", operation="promote")


@pytest.mark.parametrize("name", BUILT_IN)
def test_simple_paths_end_terminal_and_never_revisit_a_state(name: str) -> None:
    d = lifecycle.dialect(name)
    found = paths(d, "simple")
    for path in found:
        assert d.table.outcome[path.final] is not None
        assert len(set(path.states)) == len(path.states)
    assert len({p.describe() for p in found}) == len(found)
    assert {p.final for p in found} == set(d.terminal_states)


def test_simple_paths_are_bounded() -> None:
    every = paths("domino", "simple")
    assert len(every) == 95  # all of them: domino's graph is small
    assert len(paths("domino", "simple", max_paths=10)) == 10
    short = paths("domino", "simple", max_length=3)
    assert short and all(len(p.facts) <= 3 for p in short)
    assert len(short) < len(every)


@pytest.mark.parametrize("name", BUILT_IN)
def test_transition_paths_take_every_move(name: str) -> None:
    d = lifecycle.dialect(name)
    found = paths(d, "transitions")
    taken = set().union(*(_steps(p) for p in found))
    assert taken == _changes(d)
    assert all(d.table.outcome[p.final] is not None for p in found)
    assert len(found) < len(_changes(d)), "a cover needs fewer paths than there are moves"


def test_transition_paths_of_a_user_dialect_with_guards() -> None:
    guarded = lifecycle.Dialect(
        name="guarded",
        states=[
            lifecycle.State("Waiting"),
            lifecycle.State("Done", outcome="succeeded"),
            lifecycle.State("Killed", outcome="failed"),
            lifecycle.State("Broken", outcome="failed"),
        ],
        initial="Waiting",
        transitions=[
            {"trigger": "ExecutionFailed", "source": "Waiting", "dest": "Killed",
             "when": {"exit_code": 137}},
            {"trigger": "ExecutionFailed", "source": "Waiting", "dest": "Broken"},
            {"trigger": "ExecutionSucceeded", "source": "Waiting", "dest": "Done"},
        ],
    )  # fmt: skip
    found = {p.describe(): p for p in paths(guarded, "transitions")}
    assert set(found) == {
        "[*] -Requested-> Waiting -ExecutionFailed(exit_code=137)-> Killed",
        "[*] -Requested-> Waiting -ExecutionFailed-> Broken",
        "[*] -Requested-> Waiting -ExecutionSucceeded-> Done",
    }
    killed = found["[*] -Requested-> Waiting -ExecutionFailed(exit_code=137)-> Killed"]
    assert killed.id == "Waiting->Killed"
    assert killed.facts[1] == ev.ExecutionFailed(exit_code=137)
    assert lifecycle.fold(guarded, killed.facts).state == "Killed"


def test_paths_reject_an_unknown_kind_or_operation() -> None:
    with pytest.raises(ValueError, match="kind"):
        paths("domino", "longest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no operation"):
        paths("qualytics", operation="nope")


def test_a_path_describes_itself() -> None:
    path = next(p for p in paths("qualytics", "shortest") if p.final == "Success")
    assert str(path) == path.id == "Running->Success"
    assert path.describe() == (
        "[*] -Requested(operation=promote)-> Running -ExecutionSucceeded-> Success"
    )
    param = path.param()
    assert param.id == "Running->Success"
    assert param.values == (path,)


# Paths as pytest parameters: `ids=str` names each test after its states.
@pytest.mark.parametrize("path", paths("domino", "transitions"), ids=str)
def test_used_as_parameters(path: Path) -> None:
    assert lifecycle.fold("domino", path.facts).terminal
