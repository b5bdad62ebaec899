"""The compiled form of a dialect: a lookup table, and the pure step over it.

``table.rows[state][FactClass]`` is the destination state name (the same name when the fact is
tolerated), or, when guards are involved, a tuple of ``(guard, dest)`` pairs tried in order. A
missing key means the fact is not accepted there. One dict lookup per fact is what makes folding
tens of times faster than driving a ``transitions.Machine`` (see ``benchmarks/``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from lifecycle import events as ev
from lifecycle._errors import InvalidTransition, StreamClosed

from ._declare import START

if TYPE_CHECKING:
    from ._declare import Dialect

__all__ = ["Entry", "Table", "compile_table", "resolve", "step"]

Guard: TypeAlias = tuple[tuple[str, Any], ...]
Entry: TypeAlias = str | tuple[tuple[Guard, str], ...]


class Table:
    """The dense form: ``rows`` by state, ``outcome`` by state (``None`` while active)."""

    __slots__ = ("dialect", "outcome", "rows")

    def __init__(
        self, dialect: str, rows: dict[str, dict[type, Entry]], outcome: dict[str, str | None]
    ) -> None:
        self.dialect = dialect
        self.rows = rows
        self.outcome = outcome


def compile_table(dialect: Dialect) -> Table:
    facts = ev.fact_types()
    rows: dict[str, dict[type, list[tuple[Guard, str]]]] = {START: {}}
    for state in dialect.states:
        rows[state] = {}
    canon = {name: name for name in rows}  # one str object per state: the fold compares with `is`
    for t in dialect.transitions:
        dest = canon[t.dest if t.dest is not None else t.source]
        rows[t.source].setdefault(facts[t.fact], []).append((t.when, dest))
    compiled: dict[str, dict[type, Entry]] = {}
    for state, row in rows.items():
        compiled[canon[state]] = {
            cls: (moves[0][1] if len(moves) == 1 and not moves[0][0] else tuple(moves))
            for cls, moves in row.items()
        }
    outcome: dict[str, str | None] = {START: None}
    outcome.update({s.name: s.outcome for s in dialect.states.values()})
    return Table(dialect.name, compiled, outcome)


def resolve(entry: Entry, fact: ev.Fact) -> str | None:
    """The destination of a guarded entry for this fact, or ``None`` if no guard matches."""
    if isinstance(entry, str):
        return entry
    for guard, dest in entry:
        if all(getattr(fact, field) == value for field, value in guard):
            return dest
    return None


def step(
    dialect: Dialect,
    state: str,
    fact: ev.Fact,
    *,
    stream: str | None = None,
    version: int | None = None,
) -> str:
    """``(state, fact) -> state``, pure. Raises ``InvalidTransition`` (``StreamClosed`` when the
    state is terminal) carrying the stream, version, state and fact type."""
    entry = dialect.table.rows[state].get(fact.__class__)
    dest = None if entry is None else resolve(entry, fact)
    if dest is None:
        raise rejection(dialect, state, fact, stream=stream, version=version)
    return dest


def rejection(
    dialect: Dialect,
    state: str,
    fact: ev.Fact,
    *,
    stream: str | None = None,
    version: int | None = None,
) -> InvalidTransition:
    """The error for a fact the dialect does not accept in ``state``, with a hint of what is."""
    name = type(fact).__name__
    if dialect.table.outcome.get(state) is not None:
        return StreamClosed(
            dialect=dialect.name,
            state=state,
            fact=name,
            stream=stream,
            version=version,
            hint="The stream is terminal and terminal is final; rerun or resume the run instead.",
        )
    if state == START:
        hint = "A stream must begin with Requested."
        if isinstance(fact, ev.Requested) and dialect.operations is not None:
            hint = f"Operations of {dialect.name}: {', '.join(dialect.operations)}."
    else:
        accepted = sorted(cls.__name__ for cls in dialect.table.rows[state])
        hint = f"Accepted in {state!r}: {', '.join(accepted) or 'nothing'}."
    return InvalidTransition(
        dialect=dialect.name, state=state, fact=name, stream=stream, version=version, hint=hint
    )
