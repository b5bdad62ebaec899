"""Declaring a dialect: states, transitions and tolerated facts, validated when built.

A dialect is data. From one declaration it derives a compiled lookup table for folding (the hot
path), a :class:`transitions.Machine` for live use (:meth:`Dialect.machine`) and a Mermaid
flowchart (:meth:`Dialect.to_mermaid`). Transitions are written in the ``transitions`` library's
own dict format, with fact names as triggers, plus two keys of ours:

- ``when``: ``{field: value}`` — a guard; the transition applies only if the fact's fields equal
  these values (``{"build": True}`` on ``Requested``).
- ``label``: the words drawn on the arrow in diagrams.

Before its first fact a stream is in the pseudo-state :data:`START` (``[*]``). ``initial`` is
sugar for ``Requested`` transitions out of it: ``"Queued"`` means every operation starts there,
``{"promote": "Running", "*": "Queued"}`` picks by ``Requested.operation``. Explicit ``Requested``
transitions out of ``START`` (with ``when`` guards) are tried first, in declaration order, like
``transitions`` tries transitions that share a trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from lifecycle import events as ev
from lifecycle._errors import InvalidDialect

__all__ = ["START", "Aggregation", "Dialect", "Outcome", "State", "TransitionSpec"]

START: Final = "[*]"
"""The pseudo-state of a stream before its ``Requested`` fact."""

Outcome: TypeAlias = Literal["succeeded", "failed", "cancelled"]
Aggregation: TypeAlias = Literal["fail", "warn"]
"""How container outcomes make a run's: ``fail`` — a failed container fails the run and the
containers that can no longer start are stopped; ``warn`` — the run can still succeed, with the
Warning indicator."""

TransitionSpec: TypeAlias = Mapping[str, Any]
"""One transition in the ``transitions`` dict format: ``trigger``, ``source``, ``dest``, and
optionally ``when`` and ``label``."""

_OUTCOMES: Final = ("succeeded", "failed", "cancelled")
_FACTS: Final = ev.fact_types()


@dataclass(frozen=True, slots=True)
class State:
    """One state of a dialect. A state with an ``outcome`` is terminal; one without is active.

    ``extension`` marks a state the source product does not document (drawn as such).
    """

    name: str
    outcome: Outcome | None = None
    description: str = ""
    extension: bool = False

    @property
    def terminal(self) -> bool:
        return self.outcome is not None

    @property
    def phase(self) -> Literal["active", "terminal"]:
        return "terminal" if self.outcome is not None else "active"


@dataclass(frozen=True, slots=True)
class Transition:
    """A normalised transition: one fact type, one source, one destination (``None`` means
    tolerated: accepted without a state change)."""

    fact: str
    source: str
    dest: str | None
    when: tuple[tuple[str, Any], ...] = ()
    label: str = ""
    extension: bool = False
    any_source: bool = False  # declared with source "*": drawn once, from "any active state"


def _is_name(value: object) -> bool:
    """A name of a dialect, state or operation: a non-blank ``str`` without surrounding spaces
    (``""`` or ``" "`` would be accepted by everything downstream and shown as nothing)."""
    return isinstance(value, str) and bool(value) and value == value.strip()


def _names(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class Dialect:
    """A declared state machine over facts.

    Raises :class:`~lifecycle.InvalidDialect` when the declaration is not sound: an unknown state
    or fact name, no (or two) initial states for an operation, an unreachable state, an active
    state with no path to a terminal one, a transition out of a terminal state, two transitions
    that make the same move ambiguous.
    """

    def __init__(
        self,
        name: str,
        states: Sequence[State],
        initial: str | Mapping[str, str],
        transitions: Sequence[TransitionSpec],
        tolerate: Mapping[str, Sequence[str] | str] | None = None,
        *,
        operations: Sequence[str] | None = None,
        containers: Dialect | None = None,
        container_operations: Sequence[str] | None = None,
        aggregation: Aggregation = "fail",
        description: str = "",
    ) -> None:
        if not _is_name(name):
            raise InvalidDialect(
                f"a dialect's name must be a non-blank str without surrounding spaces: {name!r}"
            )
        self.name = name
        self.description = description
        self.states: dict[str, State] = {}
        for state in states:
            if not isinstance(state, State):
                raise InvalidDialect(f"{name}: states must be lifecycle.State, got {state!r}")
            if not _is_name(state.name) or state.name == START:
                raise InvalidDialect(f"{name}: {state.name!r} cannot be a state name")
            if state.name in self.states:
                raise InvalidDialect(f"{name}: state {state.name!r} is declared twice")
            if state.outcome is not None and state.outcome not in _OUTCOMES:
                raise InvalidDialect(
                    f"{name}: state {state.name!r} has outcome {state.outcome!r}; "
                    f"use one of {', '.join(_OUTCOMES)} or None for an active state"
                )
            self.states[state.name] = state
        self.operations: tuple[str, ...] | None = tuple(operations) if operations else None
        for op in (*(operations or ()), *(container_operations or ())):
            if not _is_name(op):
                raise InvalidDialect(f"{name}: {op!r} cannot be an operation name")
        self.initial: dict[str, str] = {"*": initial} if isinstance(initial, str) else dict(initial)
        self.containers = containers
        self.container_operations = (
            frozenset(container_operations) if container_operations is not None else None
        )
        if aggregation not in ("fail", "warn"):
            raise InvalidDialect(
                f"{name}: aggregation must be 'fail' or 'warn', not {aggregation!r}"
            )
        self.aggregation: Aggregation = aggregation
        self.transitions: tuple[Transition, ...] = tuple(
            self._normalise(transitions, tolerate or {})
        )
        self._validate()
        from ._compile import compile_table  # noqa: PLC0415  (compile imports this module)

        self.table = compile_table(self)

    # -- declaration → normal form --------------------------------------------------------------

    def _known_state(self, state: str, where: str) -> None:
        if state not in self.states:
            raise InvalidDialect(
                f"{self.name}: {where} names state {state!r}, which is not declared "
                f"(declared: {', '.join(self.states)})"
            )

    def _sources(self, source: Any, where: str) -> list[str]:
        if source == "*":
            return [s.name for s in self.states.values() if not s.terminal]
        names = _names(source)
        for s in names:
            if s != START:
                self._known_state(s, where)
        return names

    def _fact(self, fact: str, where: str) -> type[ev.Fact]:
        cls = _FACTS.get(fact)
        if cls is None:
            raise InvalidDialect(
                f"{self.name}: {where} names fact {fact!r}, which does not exist "
                f"(facts: {', '.join(sorted(_FACTS))})"
            )
        return cls

    def _normalise(
        self, specs: Sequence[TransitionSpec], tolerate: Mapping[str, Sequence[str] | str]
    ) -> Iterable[Transition]:
        for i, spec in enumerate(specs):
            where = f"transition #{i}"
            unknown = set(spec) - {"trigger", "source", "dest", "when", "label", "extension"}
            if unknown or not {"trigger", "source", "dest"} <= set(spec):
                raise InvalidDialect(
                    f"{self.name}: {where} must have trigger, source and dest "
                    f"(and optionally when, label, extension); got keys {sorted(spec)}"
                )
            dest = spec["dest"]
            self._known_state(dest, where)
            when = tuple(sorted(dict(spec.get("when") or {}).items()))
            for fact in _names(spec["trigger"]):
                cls = self._fact(fact, where)
                for field, value in when:
                    try:
                        hash(value)
                    except TypeError:
                        raise InvalidDialect(
                            f"{self.name}: {where} guards {fact}.{field} on {value!r}; "
                            "a guard value must be a plain scalar (str, int, bool, None)"
                        ) from None
                    if field not in cls.__struct_fields__:
                        raise InvalidDialect(
                            f"{self.name}: {where} guards on {fact}.{field}, which is not a field"
                        )
                for source in self._sources(spec["source"], where):
                    yield Transition(
                        fact,
                        source,
                        dest,
                        when,
                        str(spec.get("label", "")),
                        bool(spec.get("extension", False)),
                        spec["source"] == "*",
                    )
        for op, state in self.initial.items():
            self._known_state(state, f"initial[{op!r}]")
            if op != "*" and self.operations is not None and op not in self.operations:
                raise InvalidDialect(
                    f"{self.name}: initial names operation {op!r}, which is not one of "
                    f"{', '.join(self.operations)}"
                )
        # initial sugar: specific operations first, the default last.
        # When operations are listed, the default expands to one guarded move per remaining
        # operation, so an unknown operation is rejected by the table and the machine alike.
        for op, state in sorted(self.initial.items(), key=lambda kv: kv[0] == "*"):
            if op != "*":
                yield Transition("Requested", START, state, (("operation", op),))
            elif self.operations is None:
                yield Transition("Requested", START, state)
            else:
                for other in self.operations:
                    if other not in self.initial:
                        yield Transition("Requested", START, state, (("operation", other),))
        for fact, sources in tolerate.items():
            self._fact(fact, f"tolerate[{fact!r}]")
            for source in self._sources(sources, f"tolerate[{fact!r}]"):
                yield Transition(fact, source, None)

    # -- validation -------------------------------------------------------------------------------

    def _validate(self) -> None:
        name = self.name
        if not any(s.terminal for s in self.states.values()):
            raise InvalidDialect(f"{name}: no terminal state (give at least one state an outcome)")
        if "*" not in self.initial and self.operations is None:
            raise InvalidDialect(
                f"{name}: initial has no '*' default and operations are not listed"
            )
        if "*" not in self.initial and self.operations is not None:
            missing = [op for op in self.operations if op not in self.initial]
            if missing:
                raise InvalidDialect(f"{name}: no initial state for operation(s) {missing}")
        for state in self.initial.values():
            if self.states[state].terminal:
                raise InvalidDialect(f"{name}: initial state {state!r} is terminal")
        seen: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Transition] = {}
        for t in self.transitions:
            if t.source != START and self.states[t.source].terminal:
                raise InvalidDialect(
                    f"{name}: {t.fact} leaves terminal state {t.source!r}; terminal is final"
                )
            if t.source == START and t.fact != "Requested":
                raise InvalidDialect(f"{name}: only Requested can leave {START}, not {t.fact}")
            key = (t.fact, t.source, t.when)
            if key in seen and seen[key].dest != t.dest:
                other = seen[key].dest or "(tolerated)"
                raise InvalidDialect(
                    f"{name}: {t.fact} from {t.source!r} goes both to {other!r} and to "
                    f"{t.dest or '(tolerated)'!r}; make one of them guarded or remove it"
                )
            seen.setdefault(key, t)
        # reachability from START, and a way out of every active state
        edges: dict[str, set[str]] = {}
        for t in self.transitions:
            if t.dest is not None:
                edges.setdefault(t.source, set()).add(t.dest)
        reached, todo = {START}, [START]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        unreachable = [s for s in self.states if s not in reached]
        if unreachable:
            raise InvalidDialect(f"{name}: state(s) {unreachable} cannot be reached from {START}")
        can_end = {s.name for s in self.states.values() if s.terminal}
        changed = True
        while changed:
            changed = False
            for src, dests in edges.items():
                if src not in can_end and dests & can_end:
                    can_end.add(src)
                    changed = True
        stuck = [s.name for s in self.states.values() if s.name not in can_end]
        if stuck:
            raise InvalidDialect(
                f"{name}: active state(s) {stuck} have no path to a terminal state"
            )
        if self.containers is not None and self.containers.containers is not None:
            raise InvalidDialect(f"{name}: a container dialect cannot have containers of its own")

    # -- derived views of the declaration ---------------------------------------------------------

    @property
    def terminal_states(self) -> list[str]:
        return [s.name for s in self.states.values() if s.terminal]

    def initial_state(self, operation: str = "run", **requested: Any) -> str:
        """The state a ``Requested(operation=…, **requested)`` puts a new stream in."""
        from ._compile import step  # noqa: PLC0415

        return step(self, START, ev.Requested(dialect=self.name, operation=operation, **requested))

    def has_containers(self, operation: str) -> bool:
        """Whether runs of ``operation`` have per-container streams."""
        return self.containers is not None and (
            self.container_operations is None or operation in self.container_operations
        )

    def transition_specs(self) -> list[dict[str, Any]]:
        """The declaration as ``transitions`` dicts (tolerated facts as internal transitions,
        ``dest=None``; guards kept under ``when``)."""
        return [
            {"trigger": t.fact, "source": t.source, "dest": t.dest, "when": dict(t.when)}
            for t in self.transitions
        ]

    def machine(self, model: Any = None, **kwargs: Any) -> Any:
        """A ``transitions.Machine`` built from this declaration, for live use with callbacks.

        Trigger it with ``model.trigger(type(fact).__name__, fact=fact)``. It starts in
        :data:`START`. Never on the hot path: folding uses the compiled table.
        """
        from ._machine import build_machine  # noqa: PLC0415

        return build_machine(self, model, **kwargs)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the dialect (and of its container machine, if any)."""
        from ._mermaid import to_mermaid  # noqa: PLC0415

        return to_mermaid(self)

    def __repr__(self) -> str:
        return f"<Dialect {self.name!r}: {len(self.states)} states, {len(self.transitions)} moves>"
