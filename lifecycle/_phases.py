"""Phases: what an orchestrator says, turned into the facts a dialect needs (issue 13).

An orchestrator thinks in phases — queued, assigned, started, succeeded, failed, out of memory,
cancelled, lost — not in one dialect's facts: Domino refuses ``ExecutionStarted`` from
Scheduled (it wants ``PreparationStarted`` first), Datatailr wants ``ResourcesRequested`` before
anything. :func:`plan` gives the canonical facts (DESIGN §7) that take a stream from its current
state to a phase, from the dialect's own table, so one mapping serves every dialect:

- ``queued``, ``assigned``, ``started`` record the phase's own fact (``ResourcesRequested``,
  ``ResourcesAssigned``, ``ExecutionStarted``) where the state accepts it; elsewhere they climb
  the canonical ladder (``ResourcesRequested``, ``ResourcesAssigned``, ``PreparationStarted``,
  ``ExecutionStarted``) from where the stream is, recording the rungs that move its state.
  A phase already reached — or passed — records nothing (orchestrator hooks repeat and arrive
  late), except ``queued`` from past it: that is a retry, ``Requeued``.
- ``succeeded`` / ``failed`` / ``out_of_memory`` record their fact, climbing to ``started``
  first where the state does not accept it yet; ``lost`` is ``InfrastructureFailed`` (any active
  state accepts it); ``cancelled`` is the stop sequence. A terminal stream already in the
  phase's outcome records nothing; in another outcome it raises ``StreamClosed``.
- A phase the stream cannot reach (``queued`` once Domino's stop was requested, ``succeeded`` from
  Datatailr's Building) raises ``InvalidTransition`` naming the state.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias, get_args

from . import events as ev
from ._canonical import START_SEQUENCE, accepted, stop_facts
from ._dialects import Dialect
from ._errors import InvalidTransition, StreamClosed

__all__ = ["PHASES", "Phase", "plan", "reach"]

Phase: TypeAlias = Literal[
    "queued", "assigned", "started", "succeeded", "failed", "out_of_memory", "cancelled", "lost"
]
"""What an orchestrator reports about a run or a container (see the module docstring)."""

PHASES: Final[tuple[str, ...]] = get_args(Phase)

_RUNGS: Final = {"queued": 1, "assigned": 2, "started": len(START_SEQUENCE)}
"""How many facts of the canonical ladder (``START_SEQUENCE``) each active phase takes."""

_FINAL: Final[Mapping[str, tuple[type[ev.Fact], str]]] = {
    "succeeded": (ev.ExecutionSucceeded, "succeeded"),
    "failed": (ev.ExecutionFailed, "failed"),
    "out_of_memory": (ev.OutOfMemory, "failed"),
    "lost": (ev.InfrastructureFailed, "failed"),
    "cancelled": (ev.Stopped, "cancelled"),
}
"""Each terminal phase's fact and the outcome it ends in."""


class _Ladder:
    """Where each state of a dialect stands on the canonical ladder, over all its operations."""

    def __init__(self, d: Dialect) -> None:
        self.rank: dict[str, int] = {}  # the highest rung that reaches a state
        self.target: dict[str, set[str]] = {phase: set() for phase in _RUNGS}
        for op in d.operations or ("run",):
            try:
                state = d.initial_state(op)
            except InvalidTransition:
                continue
            self.rank[state] = max(self.rank.get(state, 0), 0)
            for phase, rungs in _RUNGS.items():
                reached = _walk(d, state, START_SEQUENCE[:rungs])
                if reached is not None:
                    self.target[phase].add(reached)
            for i, fact in enumerate(START_SEQUENCE, 1):
                dest = accepted(d, state, fact)
                if dest is None:
                    break
                state = dest
                self.rank[state] = max(self.rank.get(state, 0), i)
        stop_moves = ("StopRequested", "StoppingStarted")
        self.stopping = {
            t.dest
            for t in d.transitions
            if t.fact in stop_moves and t.dest is not None and d.table.outcome[t.dest] is None
        }
        # States off the ladder (Domino's Building, Pulling) stand where the states that lead
        # to them stand; moves back (retries) and stops do not count.
        inherited: dict[str, int] = {}
        changed = True
        while changed:
            changed = False
            for t in d.transitions:
                if (
                    t.dest is None
                    or t.dest in self.rank
                    or t.dest in self.stopping
                    or t.fact == "Requeued"
                    or d.table.outcome[t.dest] is not None
                ):
                    continue
                source = self.rank.get(t.source, inherited.get(t.source))
                if source is not None and inherited.get(t.dest, -1) < source:
                    inherited[t.dest] = source
                    changed = True
        self.rank.update(inherited)
        # A state that is already running (Qualytics' Promote starts in Running, where the
        # ladder's first rungs are tolerated) is no waiting state: from it, ``queued`` is a retry.
        started = _RUNGS["started"]
        for phase in ("queued", "assigned"):
            self.target[phase] = {s for s in self.target[phase] if self.rank[s] < started}


@functools.cache
def _ladder(d: Dialect) -> _Ladder:
    return _Ladder(d)


def _walk(d: Dialect, state: str, facts: Any) -> str | None:
    """The state ``facts`` lead to from ``state``, skipping those it does not accept; ``None``
    if none is accepted at all."""
    moved = False
    for fact in facts:
        dest = accepted(d, state, fact)
        if dest is not None:
            state, moved = dest, True
    return state if moved else None


def _refuse(d: Dialect, state: str, fact: str, hint: str, stream: str | None) -> InvalidTransition:
    return InvalidTransition(dialect=d.name, state=state, fact=fact, stream=stream, hint=hint)


def _climb(d: Dialect, state: str, phase: str, stream: str | None) -> list[ev.Fact]:
    """The ladder facts from ``state`` to the active ``phase`` (``[]``: reached or passed)."""
    ladder = _ladder(d)
    if state in ladder.stopping:
        raise _refuse(d, state, phase, "A stop was requested: it can only end now.", stream)
    rank, rungs = ladder.rank.get(state, 0), _RUNGS[phase]
    if state in ladder.target[phase] or rank >= rungs:
        return []
    own = START_SEQUENCE[rungs - 1]  # the phase's own fact: enough where it is accepted
    if accepted(d, state, own) in ladder.target[phase]:
        return [own]
    facts: list[ev.Fact] = []
    for i, fact in enumerate(START_SEQUENCE[:rungs], 1):
        dest = accepted(d, state, fact) if i > rank else None
        if dest is not None and (dest != state or fact is own):
            facts.append(fact)  # only rungs that move the state: no invented phases
            state = dest
    if state not in ladder.target[phase]:
        raise _refuse(d, state, phase, f"The phase {phase!r} cannot be reached from here.", stream)
    return facts


def reach(d: Dialect, state: str, final: ev.Fact, *, stream: str | None = None) -> list[ev.Fact]:
    """The facts that end a stream in ``state`` with ``final``: ``[final]`` where the state
    accepts it, else the ladder to ``started`` first."""
    dest = accepted(d, state, final)
    if dest is not None and d.table.outcome[dest] is not None:
        return [final]
    before = _climb(d, state, "started", stream)
    after = _walk(d, state, before) or state
    dest = accepted(d, after, final)
    if dest is None or d.table.outcome[dest] is None:
        name = type(final).__name__
        raise _refuse(d, state, name, f"{name} cannot end the stream from here.", stream)
    return [*before, final]


def plan(
    d: Dialect, state: str, phase: str, *, stream: str | None = None, **details: Any
) -> list[ev.Fact]:
    """The facts that move a stream of dialect ``d`` from ``state`` to ``phase`` (``[]``: it is
    there already). ``details`` are fields of the phase's fact: ``reason`` (queued, lost,
    cancelled), ``by`` (cancelled), ``error`` / ``exit_code`` (failed), ``limit_bytes``
    (out_of_memory), ``cached_from`` (succeeded). Raises ``ValueError`` for an unknown phase,
    ``StreamClosed`` for a terminal stream in another outcome, ``InvalidTransition`` for a
    phase the state cannot reach."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")
    outcome = d.table.outcome[state]
    if outcome is not None:
        if phase in _FINAL and _FINAL[phase][1] == outcome:
            return []
        raise StreamClosed(
            dialect=d.name,
            state=state,
            fact=phase,
            stream=stream,
            hint=f"The stream ended {outcome}; start a rerun to run it again.",
        )
    if phase == "queued":
        ladder = _ladder(d)
        if state not in ladder.target["queued"] and ladder.rank.get(state, 0) > _RUNGS["queued"]:
            retry = ev.Requeued(**details)
            if state in ladder.stopping or accepted(d, state, retry) is None:
                raise _refuse(d, state, "Requeued", "No retry from here.", stream)
            return [retry]
        details = {}  # a reason matters only to a retry
    if phase in _RUNGS:
        if details:
            raise TypeError(f"phase {phase!r} takes no details, got {sorted(details)}")
        return _climb(d, state, phase, stream)
    if phase == "cancelled":
        return stop_facts(d, state, **details)
    if phase == "lost":
        details.setdefault("reason", "worker_lost")
    return reach(d, state, _FINAL[phase][0](**details), stream=stream)
