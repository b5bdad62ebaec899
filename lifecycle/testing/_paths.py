"""Paths through a dialect's graph, like XState's graph tools: fact lists for parametrized tests.

A dialect's compiled table is a graph: states are nodes, each ``(state, fact class, guard) ->
dest`` entry is an edge (a :class:`Move`). :func:`paths` walks it three ways:

- ``"shortest"`` — one shortest path to every state;
- ``"simple"`` — every simple path (no state twice) to a terminal state, up to a bound;
- ``"transitions"`` — a small set of complete paths (each ends terminal) that together take
  every move of the dialect at least once.

Tolerated facts (self-loops) are left out: they never change where a path goes. Every
:class:`Path` folds without error: ``lifecycle.fold(dialect, path.facts).state == path.final``.
No Hypothesis here; pytest is imported only by :meth:`Path.param`.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

import msgspec.inspect as mi

from lifecycle import events as ev
from lifecycle._dialects import START, Dialect, resolve, step
from lifecycle._dialects import dialect as find_dialect

if TYPE_CHECKING:
    from _pytest.mark import ParameterSet

__all__ = ["Move", "Path", "PathKind", "fact_for", "moves", "paths", "walk"]

Guard: TypeAlias = tuple[tuple[str, Any], ...]
PathKind: TypeAlias = Literal["shortest", "simple", "transitions"]


class Move(NamedTuple):
    """One edge of the compiled table: ``fact`` (with ``guard`` satisfied) takes ``source`` to
    ``dest``. A tolerated fact is a move whose ``dest`` is its ``source``."""

    source: str
    fact: type[ev.Fact]
    guard: Guard
    dest: str

    @property
    def tolerated(self) -> bool:
        return self.dest == self.source

    @property
    def label(self) -> str:
        """The fact's name, with the guard's values when it has one: ``Requested(build=True)``."""
        name = self.fact.__name__
        if not self.guard:
            return name
        return name + "(" + ", ".join(f"{k}={v}" for k, v in self.guard) + ")"


def check_operation(dialect: Dialect, operation: str | None) -> None:
    """Raise ``ValueError`` for an operation the dialect does not have (histories and paths of it
    would be empty, which hides the mistake)."""
    if operation is not None and dialect.operations is not None:  # noqa: SIM102  (two reasons)
        if operation not in dialect.operations:
            raise ValueError(
                f"{dialect.name} has no operation {operation!r}; "
                f"its operations: {', '.join(dialect.operations)}"
            )


def _fits(guard: Guard, operation: str | None) -> bool:
    if operation is None:
        return True
    return all(value == operation for field, value in guard if field == "operation")


def moves(dialect: Dialect, state: str, *, operation: str | None = None) -> list[Move]:
    """Every move the compiled table allows out of ``state``, in table order.

    A guarded entry gives one move per guard. With ``operation``, moves out of :data:`START`
    whose guard names another operation are left out.
    """
    out: list[Move] = []
    for cls, entry in dialect.table.rows[state].items():
        pairs: Sequence[tuple[Guard, str]] = (((), entry),) if isinstance(entry, str) else entry
        for guard, dest in pairs:
            if _fits(guard, operation):
                out.append(Move(state, cls, guard, dest))
    return out


def default_operation(dialect: Dialect) -> str:
    """The operation a ``Requested`` carries when nothing picks one: ``run``, or the dialect's
    first operation when it lists them (what ``AsyncRuns.create`` accepts)."""
    return "run" if dialect.operations is None else dialect.operations[0]


def _placeholder(t: mi.Type) -> Any:
    """A plain value of a msgspec type, for required fields of a fact built by hand."""
    if isinstance(t, mi.UnionType):
        return (
            None if any(isinstance(u, mi.NoneType) for u in t.types) else _placeholder(t.types[0])
        )
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    simple: dict[type, Any] = {
        mi.StrType: "x",
        mi.IntType: 0,
        mi.FloatType: 0.0,
        mi.BoolType: False,
        mi.DictType: {},
        mi.ListType: [],
        mi.VarTupleType: (),
    }
    return simple.get(type(t))


@functools.cache
def _required(cls: type[ev.Fact]) -> tuple[tuple[str, Any], ...]:
    """The fields of ``cls`` without a default, each with a plain value of its type."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return tuple((f.name, _placeholder(f.type)) for f in info.fields if f.required)


def fact_for(dialect: Dialect, move: Move, operation: str | None = None) -> ev.Fact:
    """A plain fact that takes ``move``: field defaults, the guard's values, and for
    ``Requested`` the dialect's name and an operation it accepts."""
    values = dict(_required(move.fact))
    values.update(move.guard)
    if move.fact is ev.Requested:
        values["dialect"] = dialect.name
        values.setdefault("operation", operation or default_operation(dialect))
    return move.fact(**values)


def takes(dialect: Dialect, move: Move, fact: ev.Fact) -> bool:
    """Whether ``fact`` really makes ``move`` (an earlier guard of the same entry may win)."""
    entry = dialect.table.rows[move.source].get(type(fact))
    return entry is not None and resolve(entry, fact) == move.dest


@dataclass(frozen=True, slots=True)
class Path:
    """A walk from before the first fact to ``states[-1]``: ``facts[i]`` leads to ``states[i]``.

    ``str(path)`` is its ``id``, so ``@pytest.mark.parametrize("path", paths(d), ids=str)``
    names each test after its states; :meth:`param` does the same per item.
    """

    dialect: str
    facts: tuple[ev.Fact, ...]
    states: tuple[str, ...]
    labels: tuple[str, ...]
    id: str = ""

    @property
    def final(self) -> str:
        """The state the path ends in."""
        return self.states[-1] if self.states else START

    def describe(self) -> str:
        """Every step with its fact: ``[*] -Requested-> Queued -ExecutionStarted-> Running``."""
        out = START
        for label, state in zip(self.labels, self.states, strict=True):
            out += f" -{label}-> {state}"
        return out

    def param(self) -> ParameterSet:
        """``pytest.param(self, id=self.id)``."""
        import pytest  # noqa: PLC0415  (pytest only when parametrizing)

        return pytest.param(self, id=self.id)

    def __str__(self) -> str:
        return self.id


def _make_path(dialect: Dialect, walk: Sequence[Move], operation: str | None) -> Path:
    facts = tuple(fact_for(dialect, m, operation) for m in walk)
    return Path(
        dialect=dialect.name,
        facts=facts,
        states=tuple(m.dest for m in walk),
        labels=tuple(m.label for m in walk),
    )


def _named(found: list[Path]) -> list[Path]:
    """Give each path its id: its states joined by ``->``, or, where two paths share those, the
    full description with the facts."""
    short = ["->".join(p.states) for p in found]
    counts: dict[str, int] = {}
    for s in short:
        counts[s] = counts.get(s, 0) + 1
    return [
        Path(p.dialect, p.facts, p.states, p.labels, s if counts[s] == 1 else p.describe())
        for p, s in zip(found, short, strict=True)
    ]


class _Graph:
    """The moves of one dialect (and one operation) that change state and can really be taken."""

    def __init__(self, dialect: Dialect, operation: str | None) -> None:
        self.dialect = dialect
        self.operation = operation
        self.out: dict[str, list[Move]] = {}
        for state in [START, *dialect.states]:
            self.out[state] = [
                m
                for m in moves(dialect, state, operation=operation)
                if not m.tolerated and takes(dialect, m, fact_for(dialect, m, operation))
            ]

    def terminal(self, state: str) -> bool:
        return self.dialect.table.outcome[state] is not None

    def shortest(self) -> dict[str, list[Move]]:
        """A shortest walk to every reachable state (breadth first, table order breaks ties)."""
        tree: dict[str, list[Move]] = {START: []}
        queue = deque([START])
        while queue:
            state = queue.popleft()
            for m in self.out[state]:
                if m.dest not in tree:
                    tree[m.dest] = [*tree[state], m]
                    queue.append(m.dest)
        return tree

    def to_terminal(self) -> dict[str, list[Move]]:
        """A shortest walk from every state that can end to its nearest terminal state."""
        into: dict[str, list[Move]] = {}
        for ms in self.out.values():
            for m in ms:
                into.setdefault(m.dest, []).append(m)
        rest: dict[str, list[Move]] = {s: [] for s in self.dialect.states if self.terminal(s)}
        queue = deque(rest)
        while queue:
            state = queue.popleft()
            for m in into.get(state, ()):
                if m.source not in rest:
                    rest[m.source] = [m, *rest[state]]
                    queue.append(m.source)
        return rest

    def simple(self, max_paths: int, max_length: int | None) -> Iterator[list[Move]]:
        """Every simple walk from ``START`` to a terminal state, depth first, up to the bounds."""
        found = 0
        stack: list[tuple[str, list[Move], frozenset[str]]] = [(START, [], frozenset({START}))]
        while stack and found < max_paths:
            state, walk, seen = stack.pop()
            if self.terminal(state):
                found += 1
                yield walk
                continue
            if max_length is not None and len(walk) >= max_length:
                continue
            for m in reversed(self.out[state]):  # reversed: pop in table order
                if m.dest not in seen:
                    stack.append((m.dest, [*walk, m], seen | {m.dest}))

    def covering(self) -> Iterator[list[Move]]:
        """Complete walks that together take every move reachable from ``START``."""
        tree, rest = self.shortest(), self.to_terminal()
        covered: set[Move] = set()
        for state in tree:  # breadth-first order: short walks first
            for m in self.out[state]:
                if m in covered or m.dest not in rest:
                    continue
                walk = [*tree[state], m, *rest[m.dest]]
                covered.update(walk)
                yield walk


def paths(
    dialect: Dialect | str,
    kind: PathKind = "shortest",
    *,
    operation: str | None = None,
    max_paths: int = 1000,
    max_length: int | None = None,
) -> list[Path]:
    """Paths through ``dialect`` as lists of facts, ready for ``pytest.mark.parametrize``.

    - ``"shortest"``: one shortest path to every reachable state (``Path.final`` is that state);
    - ``"simple"``: every path that visits no state twice and ends in a terminal state, at most
      ``max_paths`` of them, each at most ``max_length`` facts long;
    - ``"transitions"``: complete paths (ending terminal) that together take every move.

    With ``operation`` only runs of that operation are walked (a Qualytics ``promote`` never
    sees Queued). Raises ``ValueError`` for an unknown kind or operation.
    """
    d = find_dialect(dialect)
    check_operation(d, operation)
    graph = _Graph(d, operation)
    walks: list[list[Move]]
    if kind == "shortest":
        walks = [w for s, w in graph.shortest().items() if s != START]
    elif kind == "simple":
        walks = list(graph.simple(max_paths, max_length))
    elif kind == "transitions":
        walks = list(graph.covering())
    else:
        raise ValueError(f"kind must be 'shortest', 'simple' or 'transitions', not {kind!r}")
    return _named([_make_path(d, w, operation) for w in walks])


def walk(dialect: Dialect | str, facts: Sequence[ev.Fact]) -> list[str]:
    """The state after each fact of a run stream (raises ``InvalidTransition`` like ``fold``).

    Handy to label examples: ``hypothesis.event(walk(d, facts)[-1])``.
    """
    d = find_dialect(dialect)
    state, out = START, []
    for fact in facts:
        state = step(d, state, fact)
        out.append(state)
    return out
