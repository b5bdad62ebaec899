"""The canonical fact sequences: what the engine emits, and what every built-in dialect accepts.

``Requested``, ``ResourcesRequested``, ``ResourcesAssigned``, ``PreparationStarted``,
``ExecutionStarted``, logs, then ``ExecutionSucceeded`` / ``ExecutionFailed`` / ``OutOfMemory`` /
``InfrastructureFailed`` — or, at any point, ``StopRequested`` → ``StoppingStarted`` →
``Stopped``. Each dialect tolerates the phases it does not model, and all three agree on the
outcome category of every such history (a property test keeps them to it).
"""

from __future__ import annotations

from typing import Final

from . import events as ev
from ._dialects import Dialect, resolve

__all__ = ["START_SEQUENCE", "STOP_SEQUENCE", "accepted", "stop_facts"]

START_SEQUENCE: Final[tuple[ev.Fact, ...]] = (
    ev.ResourcesRequested(),
    ev.ResourcesAssigned(),
    ev.PreparationStarted(),
    ev.ExecutionStarted(),
)


def STOP_SEQUENCE(reason: str = "user", by: str = "user") -> tuple[ev.Fact, ...]:
    """``StopRequested`` → ``StoppingStarted`` → ``Stopped(reason)``."""
    return (ev.StopRequested(by=by), ev.StoppingStarted(), ev.Stopped(reason=reason))


def accepted(dialect: Dialect, state: str, fact: ev.Fact) -> str | None:
    """The state ``fact`` leads to from ``state``, or ``None`` if it is not accepted there."""
    entry = dialect.table.rows[state].get(fact.__class__)
    return None if entry is None else resolve(entry, fact)


def stop_facts(
    dialect: Dialect, state: str, reason: str = "user", by: str = "user"
) -> list[ev.Fact]:
    """The part of the stop sequence this dialect accepts from ``state``, ending terminal.

    Facts of the sequence the state does not accept are skipped (a Domino run already in
    StopRequested needs no second request). Returns ``[]`` for a terminal state.
    """
    if dialect.table.outcome[state] is not None:
        return []
    out: list[ev.Fact] = []
    for fact in STOP_SEQUENCE(reason, by):
        dest = accepted(dialect, state, fact)
        if dest is not None:
            out.append(fact)
            state = dest
    if dialect.table.outcome[state] is None:
        raise ValueError(f"{dialect.name} cannot stop from {state!r}")  # a dialect bug
    return out
