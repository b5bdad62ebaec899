"""``load_dialect``: a dialect declared in a TOML or JSON file is the same dialect as declared in
Python; a bad file raises ``InvalidDialect`` naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._dialects import _REGISTRY
from lifecycle._dialects._load import load_dialect

from .test_user_dialects import declare_mine

MINE_TOML = """
name = "mine"
initial = "Waiting"
states = [
    "Waiting",
    "Working",
    { name = "Done", outcome = "succeeded" },
    { name = "Broken", outcome = "failed" },
    { name = "Cancelled", outcome = "cancelled" },
]
transitions = [
    { trigger = "ExecutionStarted", source = "Waiting", dest = "Working" },
    { trigger = "ExecutionSucceeded", source = "Working", dest = "Done" },
    { trigger = [
        "ExecutionFailed", "OutOfMemory", "InfrastructureFailed"
    ], source = "Working", dest = "Broken" },
    { trigger = "Stopped", source = ["Waiting", "Working"], dest = "Cancelled" },
]

[tolerate]
LogRecorded = ["Waiting", "Working"]
StopRequested = ["Waiting", "Working"]
"""

MINE_JSON: dict[str, Any] = {
    "name": "mine",
    "initial": "Waiting",
    "states": [
        "Waiting",
        "Working",
        {"name": "Done", "outcome": "succeeded"},
        {"name": "Broken", "outcome": "failed"},
        {"name": "Cancelled", "outcome": "cancelled"},
    ],
    "transitions": [
        {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
        {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
        {
            "trigger": ["ExecutionFailed", "OutOfMemory", "InfrastructureFailed"],
            "source": "Working",
            "dest": "Broken",
        },
        {"trigger": "Stopped", "source": ["Waiting", "Working"], "dest": "Cancelled"},
    ],
    "tolerate": {"LogRecorded": ["Waiting", "Working"], "StopRequested": ["Waiting", "Working"]},
}


def _same(a: lifecycle.Dialect, b: lifecycle.Dialect) -> None:
    assert a.name == b.name
    assert a.states == b.states
    assert a.initial == b.initial
    assert a.transitions == b.transitions
    assert a.table.rows == b.table.rows
    assert a.to_mermaid() == b.to_mermaid()


def test_toml_declares_the_same_dialect_as_python(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINE_TOML)
    loaded = load_dialect(path)
    _same(loaded, declare_mine())
    facts = [ev.Requested(dialect="mine"), ev.ExecutionStarted(), ev.OutOfMemory()]
    assert lifecycle.fold(loaded, facts).state == "Broken"


def test_json_declares_the_same_dialect_as_python(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(MINE_JSON))
    _same(load_dialect(str(path)), declare_mine())


def test_every_option_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(
        """
name = "jobs"
description = "batch jobs"
operations = ["batch", "promote"]
container_operations = ["batch"]
aggregation = "warn"
states = [
    "Queued",
    { name = "Running", description = "on a node" },
    { name = "Success", outcome = "succeeded" },
    { name = "Killed", outcome = "failed", extension = true },
    { name = "Failure", outcome = "failed" },
]
transitions = [
    { trigger = "ExecutionStarted", source = "Queued", dest = "Running", label = "picked up" },
    { trigger = "ExecutionSucceeded", source = "Running", dest = "Success" },
    { trigger = "ExecutionFailed", source = "Running", dest = "Killed", when = {exit_code = 137} },
    { trigger = "ExecutionFailed", source = "Running", dest = "Failure" },
]
tolerate = { LogRecorded = "*" }

[initial]
promote = "Running"
"*" = "Queued"

[containers]
name = "jobs.step"
initial = "Queued"
states = ["Queued", { name = "Done", outcome = "succeeded" }]
transitions = [{ trigger = "ExecutionSucceeded", source = "Queued", dest = "Done" }]
"""
    )
    d = load_dialect(path)
    assert (d.description, d.operations, d.aggregation) == (
        "batch jobs",
        ("batch", "promote"),
        "warn",
    )
    assert d.initial == {"promote": "Running", "*": "Queued"}
    assert d.states["Killed"].extension and d.states["Running"].description == "on a node"
    assert d.containers is not None and d.containers.name == "jobs.step"
    assert d.has_containers("batch") and not d.has_containers("promote")
    killed = [ev.Requested(dialect="jobs", operation="promote"), ev.ExecutionFailed(exit_code=137)]
    assert lifecycle.fold(d, killed).state == "Killed"
    assert lifecycle.fold(d, [killed[0], ev.ExecutionFailed(exit_code=1)]).state == "Failure"
    assert '"picked up"' in d.to_mermaid()


def test_containers_may_name_a_registered_dialect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = declare_mine()
    monkeypatch.setitem(_REGISTRY, "mine", steps)
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({**MINE_JSON, "name": "mine-runs", "containers": "mine"}))
    assert load_dialect(path).containers is steps


def _json(**changes: Any) -> str:
    """The JSON example with some keys changed."""
    return json.dumps({**MINE_JSON, **changes})


STATES, MOVES = MINE_JSON["states"], MINE_JSON["transitions"]
UNHASHABLE = {"trigger": "ExecutionFailed", "source": "Waiting", "dest": "Broken",
              "when": {"traceback": ["x"]}}  # fmt: skip

BAD: dict[str, tuple[str, str, str]] = {
    "not TOML": ("d.toml", "name = [", "not valid TOML"),
    "not JSON": ("d.json", "{", "not valid JSON"),
    "not UTF-8": ("d.toml", "name = '\udcff'", "not valid TOML"),
    "another format": ("d.yaml", "name: mine", "must end in .toml or .json"),
    "an unknown key": ("d.json", _json(colour="red"), "unknown field `colour`"),
    "an unknown key in a transition": (
        "d.json",
        _json(transitions=[{**MOVES[0], "to": "x"}]),
        r"unknown field `to` - at `\$.transitions\[0\]`",
    ),
    "a missing key": (
        "d.json",
        json.dumps({k: v for k, v in MINE_JSON.items() if k != "initial"}),
        "missing required field `initial`",
    ),
    "a wrong type": (
        "d.json",
        _json(states=[1]),
        r"Expected `str \| object`, got `int` - at `\$.states\[0\]`",
    ),
    "an unknown outcome": (
        "d.json",
        _json(states=[*STATES, {"name": "X", "outcome": "meh"}]),
        r"\$.states\[5\].outcome",
    ),
    "a declaration that fails validation": (
        "d.json",
        _json(states=[*STATES, "Orphan"]),
        r"mine: state\(s\) \['Orphan'\] cannot be reached",
    ),
    "an unhashable guard value": (
        "d.json",
        _json(transitions=[*MOVES, UNHASHABLE]),
        "must be a plain scalar",
    ),
    "containers naming no dialect": (
        "d.json",
        _json(containers="nope"),
        "containers: no dialect named 'nope'",
    ),
}


@pytest.mark.parametrize(("name", "text", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_file_names_itself_and_the_problem(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(lifecycle.InvalidDialect, match=message) as caught:
        load_dialect(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(lifecycle.InvalidDialect, match="cannot read the dialect file"):
        load_dialect(tmp_path / "absent.toml")
