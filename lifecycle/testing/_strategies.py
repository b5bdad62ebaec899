"""Hypothesis strategies for facts and histories of any dialect, built-in or user-declared.

- :func:`fact_strategy` / :func:`facts` — facts whose every field survives the storage and export
  encodings (msgpack and JSON): integers within int64, text without surrogates, finite floats,
  timezone-aware datetimes, JSON-shaped ``params``. ``st.from_type`` on a msgspec Struct draws
  integers msgspec cannot encode; :func:`register_strategies` (run by Hypothesis through the
  ``hypothesis`` entry point, see ``_hypothesis_setup``) makes ``st.from_type(SomeFact)`` use these.
- :func:`histories` — valid fact lists of one run stream, each starting with ``Requested``: a walk
  over the dialect's compiled table that favours progress, so histories often end terminal and
  reach every state and move of a dialect within a few hundred examples.
- :func:`invalid_histories` — a valid prefix plus exactly one fact the dialect rejects where the
  prefix left it (after a terminal state too).
- :func:`canonical_histories` — histories of the canonical sequence the engine emits (DESIGN §7),
  which every built-in dialect accepts.

Every strategy here is built from the fact classes' own field types (``msgspec.inspect``), so a
field added to a fact later is drawn too. Nothing here needs the entry point to have run.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, STOP_SEQUENCE
from lifecycle._dialects import START, Dialect
from lifecycle._dialects import dialect as find_dialect

from ._paths import Move, check_operation, default_operation, fact_for, moves, takes

__all__ = [
    "InvalidHistory",
    "canonical_histories",
    "fact_strategy",
    "facts",
    "histories",
    "invalid_histories",
    "recorded",
    "register_strategies",
    "rejected_facts",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
BUILT_IN: Final = ("datatailr", "domino", "qualytics")

# -- field values ---------------------------------------------------------------------------------


def _text(max_size: int = 20, min_size: int = 0) -> st.SearchStrategy[str]:
    # Hypothesis' default alphabet already leaves out surrogates, which UTF-8 cannot carry.
    return st.text(min_size=min_size, max_size=max_size)


def json_values() -> st.SearchStrategy[Any]:
    """Values a JSON or msgpack document carries unchanged: ``None``, booleans, int64 integers,
    finite floats, text, and lists and string-keyed dicts of them."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(INT64_MIN, INT64_MAX)
        | st.floats(allow_nan=False, allow_infinity=False)
        | _text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text(8), inner, max_size=3),
        max_leaves=8,
    )


def _utc_datetimes() -> st.SearchStrategy[_dt.datetime]:
    return st.datetimes(
        min_value=_dt.datetime(1970, 1, 1),
        max_value=_dt.datetime(2200, 1, 1),
        timezones=st.just(_dt.UTC),
    )


def container_names() -> st.SearchStrategy[str]:
    """Names ``AsyncRuns.create`` accepts for containers: non-empty, without ``/``."""
    return st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=12
    )


def _run_ids() -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(1, INT64_MAX)


_BY_FIELD: Final[dict[str, Callable[[], st.SearchStrategy[Any]]]] = {
    # fields whose meaning narrows what their type allows
    "containers": lambda: st.lists(container_names(), max_size=3, unique=True).map(tuple),
    "params": lambda: st.dictionaries(_text(8), json_values(), max_size=3),
    "original_run_id": _run_ids,
    "root_run_id": _run_ids,
    "cached_from": _run_ids,
    "job_version": _run_ids,
    "size": lambda: st.integers(0, INT64_MAX),
    "limit_bytes": lambda: st.none() | st.integers(0, INT64_MAX),
    "level": lambda: st.sampled_from(LOG_LEVELS) | _text(10),
    "event_id": lambda: st.binary(min_size=16, max_size=16).map(bytes.hex),
}


def _for_type(t: mi.Type) -> st.SearchStrategy[Any]:
    """A wire-safe strategy for one msgspec type (as ``msgspec.inspect`` describes it)."""
    if isinstance(t, mi.UnionType):
        return st.one_of(*(_for_type(u) for u in t.types))
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else INT64_MIN)
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else INT64_MAX)
        return st.integers(max(lo, INT64_MIN), min(hi, INT64_MAX))
    if isinstance(t, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.StrType):
        if t.pattern is not None:
            return st.from_regex(t.pattern, fullmatch=True)
        return _text(t.max_length or 20, t.min_length or 0)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.DateTimeType):
        return _utc_datetimes()
    if isinstance(t, mi.AnyType):
        return json_values()
    if isinstance(t, mi.DictType):
        return st.dictionaries(_for_type(t.key_type), _for_type(t.value_type), max_size=3)
    if isinstance(t, mi.ListType):
        return st.lists(_for_type(t.item_type), max_size=3)
    if isinstance(t, mi.VarTupleType):
        return st.lists(_for_type(t.item_type), max_size=3).map(tuple)
    if isinstance(t, mi.StructType):
        return _struct(t.cls)
    raise TypeError(f"no wire-safe strategy for the msgspec type {t!r}; register one")


def _struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {
        f.name: _BY_FIELD[f.name]() if f.name in _BY_FIELD else _for_type(f.type)
        for f in info.fields
    }
    return st.builds(cls, **fields)


@functools.cache
def fact_strategy(cls: type[ev.Fact]) -> st.SearchStrategy[ev.Fact]:
    """Facts of class ``cls`` with wire-safe field values (any ``Requested.dialect``)."""
    if not (isinstance(cls, type) and issubclass(cls, ev.Fact)) or cls is ev.Fact:
        raise TypeError(f"fact_strategy() takes a fact class of lifecycle.events, not {cls!r}")
    return _struct(cls)


def facts() -> st.SearchStrategy[ev.Fact]:
    """Any fact, of any class, with wire-safe field values."""
    return st.one_of(*(fact_strategy(cls) for cls in ev.fact_types().values()))


def recorded(events: st.SearchStrategy[ev.Fact] | None = None) -> st.SearchStrategy[ev.Recorded]:
    """``Recorded`` envelopes around ``events`` (default: :func:`facts`), wire-safe. They are
    not a consistent log (versions and positions are drawn independently)."""
    streams = st.builds(
        lambda run, container: f"run-{run}" + (f"/{container}" if container else ""),
        st.integers(1, INT64_MAX),
        st.none() | container_names(),
    )
    return st.builds(
        ev.Recorded,
        stream=streams,
        version=st.integers(1, INT64_MAX),
        position=st.integers(1, INT64_MAX),
        event_id=_BY_FIELD["event_id"](),
        recorded_at=_utc_datetimes(),
        event=events if events is not None else facts(),
    )


def register_strategies() -> None:
    """Make ``st.from_type`` draw wire-safe facts and envelopes: every fact class, ``Fact`` (any
    fact) and ``Recorded``. Idempotent. Hypothesis runs it through the ``hypothesis`` entry
    point; call it yourself where that entry point is not installed."""
    for cls in ev.fact_types().values():
        st.register_type_strategy(cls, fact_strategy(cls))
    st.register_type_strategy(ev.Fact, facts())
    st.register_type_strategy(ev.Recorded, recorded())


# -- histories ------------------------------------------------------------------------------------
#
# A history is drawn in two passes: first the walk (which move in each state), then the facts
# that make those moves. Drawing every choice of the walk before any variable-size fact keeps
# the walk's choices aligned when Hypothesis mutates an example; interleaved, a mutated fact
# shifts the later choices and Hypothesis fills them with zeros, which ends most walks at once.

_ENDING, _PROGRESS, _BACK = 3, 15, 16
"""A free step is drawn by category from ``integers(0, 19)``: below ``_ENDING`` a move to a
terminal state (15%), below ``_PROGRESS`` one to another active state (60%), below ``_BACK`` a
move back to a state the walk came through (5%: a retry, such as ``Requeued``), else a tolerated
fact (20%). Shrinking lowers the integer, so a shrunk history ends as early as it can. Retries
are rare on purpose: drawn as plain progress, they make the walks loop instead of ending."""

Draw: TypeAlias = Callable[[st.SearchStrategy[Any]], Any]
"""What draws a value: a composite's ``draw``, or ``data.draw`` of ``st.data()``."""

_ROLL: Final = st.integers(0, 19)
_COIN: Final = st.booleans()
_ONE_IN_THREE: Final = st.integers(0, 2)


class _Plan:
    """What walks over one dialect (and operation) choose from, with every strategy built once:
    per state the moves a plain fact takes, by category (ending, progress, tolerated, back), and
    every move with a shortest walk to its source."""

    def __init__(self, dialect: Dialect, operation: str | None, max_facts: int) -> None:
        self.dialect, self.max_facts = dialect, max_facts
        self.groups: dict[str, tuple[list[Move], list[Move], list[Move], list[Move]]] = {}
        self.choose: dict[int, st.SearchStrategy[Move]] = {}
        tree: dict[str, list[Move]] = {START: []}
        queue = [START]
        for state in queue:  # breadth first: ``queue`` grows while we iterate
            found = [
                m
                for m in moves(dialect, state, operation=operation)
                if takes(dialect, m, fact_for(dialect, m, operation))
            ]
            ending = [m for m in found if dialect.table.outcome[m.dest] is not None]
            came_through = {START, *(m.source for m in tree[state])}
            back = [m for m in found if not m.tolerated and m.dest in came_through]
            progress = [m for m in found if not m.tolerated and m not in ending + back]
            tolerated = [m for m in found if m.tolerated]
            self.groups[state] = (ending, progress, tolerated, back)
            for group in self.groups[state]:
                self.choose[id(group)] = st.sampled_from(group) if group else st.nothing()
                for m in group:
                    if m.dest not in tree:
                        tree[m.dest] = [*tree[state], m]
                        queue.append(m.dest)
        self.targets = [
            (tree[state], m)
            for state in queue
            if len(tree[state]) < max_facts
            for group in self.groups[state]
            for m in group
        ]
        self.pick = st.integers(0, len(self.targets))
        self.budget = st.integers(1, max_facts)

    def walk(self, draw: Draw) -> list[Move]:
        """Draw a walk: every choice of it before any fact (see the comment above)."""
        walk: list[Move] = []
        state = START
        # Most walks first go the shortest way to a move picked from all of them (with a
        # tolerated fact here and there on the way), so moves deep in a dialect are taken about
        # as often as shallow ones; the others (0, what shrinking moves towards) walk freely from
        # the start. Drawn first: Hypothesis varies its first choices most systematically.
        pick = draw(self.pick)
        if pick:
            prefix, target = self.targets[pick - 1]
            room = self.max_facts - len(prefix) - 1
            for move in [*prefix, target]:
                tolerated = self.groups[move.source][2]
                if tolerated and len(walk) < room and draw(_ONE_IN_THREE) == 2:
                    walk.append(draw(self.choose[id(tolerated)]))
                walk.append(move)
            state = target.dest
        # Most walks end terminal well within the budget; a small one leaves the run active.
        # The budget shrinks towards 1, and with it the history.
        budget = max(draw(self.budget), len(walk))
        while len(walk) < budget and self.dialect.table.outcome[state] is None:
            groups = self.groups[state]
            roll = draw(_ROLL)
            wanted = groups[
                0 if roll < _ENDING else 1 if roll < _PROGRESS else 3 if roll < _BACK else 2
            ]
            group = wanted or next(g for g in groups if g)  # an empty category: any other
            move = draw(self.choose[id(group)])
            walk.append(move)
            state = move.dest
        return walk


_plan = functools.cache(_Plan)


@functools.cache
def _operations(dialect: Dialect, move: Move, operation: str | None) -> st.SearchStrategy[str]:
    guarded = dict(move.guard).get("operation")
    if guarded is not None:
        return st.just(guarded)
    if operation is not None:
        return st.just(operation)
    if dialect.operations is not None:
        return st.sampled_from(dialect.operations)
    return st.just(default_operation(dialect))


_plain = functools.cache(fact_for)


def _draw_fact(draw: Draw, dialect: Dialect, move: Move, operation: str | None) -> ev.Fact:
    """A fact that makes ``move``: half the time a plain one (field defaults: cheap, and what a
    shrunk example shows), else one with drawn, wire-safe field values."""
    op = draw(_operations(dialect, move, operation)) if move.fact is ev.Requested else operation
    plain = _plain(dialect, move, op)
    if not draw(_COIN):
        return plain
    fact: ev.Fact = draw(fact_strategy(move.fact))
    values = dict(move.guard)
    if isinstance(fact, ev.Requested):
        values.setdefault("operation", op)
        values["dialect"] = dialect.name
        if op is None or not dialect.has_containers(op):
            values["containers"] = ()
    fact = msgspec.structs.replace(fact, **values)
    if not takes(dialect, move, fact):
        # an earlier guard of the same entry matched the drawn values: on the guarded fields,
        # use the plain fact's values, which take this move (``_Plan`` checked)
        entry = dialect.table.rows[move.source][move.fact]
        assert not isinstance(entry, str)
        guarded = {field for guard, _ in entry for field, _ in guard}
        fact = msgspec.structs.replace(fact, **{f: getattr(plain, f) for f in guarded})
    return fact


@st.composite
def _histories(
    draw: st.DrawFn, dialect: Dialect, operation: str | None, max_facts: int
) -> list[ev.Fact]:
    walk = _plan(dialect, operation, max_facts).walk(draw)
    return [_draw_fact(draw, dialect, move, operation) for move in walk]


def histories(
    dialect: Dialect | str, *, operation: str | None = None, max_facts: int = 30
) -> st.SearchStrategy[list[ev.Fact]]:
    """Valid fact lists of one run stream of ``dialect``, each starting with ``Requested``.

    ``operation`` fixes the operation (default: any the dialect has; ``run`` when it lists
    none). Histories stop at a terminal state, at ``max_facts`` facts, or now and then while
    still active. ``lifecycle.fold(dialect, history)`` never raises on them.
    """
    d = find_dialect(dialect)
    check_operation(d, operation)
    if max_facts < 1:
        raise ValueError("max_facts must be at least 1 (the Requested fact)")
    return _histories(d, operation, max_facts)


@dataclass(frozen=True, slots=True)
class InvalidHistory:
    """A valid prefix and one fact the dialect rejects after it: ``facts[index]`` (the last).

    ``state`` is where the prefix left the stream (:data:`lifecycle.START` when the prefix is
    empty); folding ``facts`` raises ``InvalidTransition`` with that state at ``index``.
    """

    facts: list[ev.Fact]
    state: str

    @property
    def index(self) -> int:
        return len(self.facts) - 1

    @property
    def prefix(self) -> list[ev.Fact]:
        return self.facts[:-1]

    @property
    def fact(self) -> ev.Fact:
        return self.facts[-1]


def _not_in(taken: list[Any]) -> Callable[[Any], bool]:
    return lambda value: value not in taken


def _unmatched(cls: type[ev.Fact], entry: Any) -> st.SearchStrategy[ev.Fact] | None:
    """Facts of ``cls`` that match none of the guards of a fully guarded ``entry``, or ``None``
    when no field lets us miss them all (a bool guarded both ways)."""
    guards = [dict(guard) for guard, _ in entry]
    shared = set(guards[0]).intersection(*guards[1:])
    for field in sorted(shared):
        taken = [g[field] for g in guards]
        if all(isinstance(v, bool) for v in taken):
            if len(set(taken)) == 2:
                continue
            other: st.SearchStrategy[Any] = st.just(not taken[0])
        elif all(isinstance(v, str) for v in taken):
            other = _text(12, 1).filter(_not_in(taken))
        elif all(isinstance(v, int) for v in taken):
            other = st.integers(0, INT64_MAX).filter(_not_in(taken))
        else:
            continue
        return st.builds(
            lambda fact, value, field=field: msgspec.structs.replace(fact, **{field: value}),
            fact_strategy(cls),
            other,
        )
    return None


@functools.cache
def _rejected(dialect: Dialect, state: str) -> tuple[st.SearchStrategy[ev.Fact], ...]:
    """Facts ``state`` rejects, in two kinds: of a class it does not take at all, and of a
    class it takes only with a guard they miss (either may be missing)."""
    row = dialect.table.rows[state]
    unknown: list[st.SearchStrategy[ev.Fact]] = []
    unmatched: list[st.SearchStrategy[ev.Fact]] = []
    for cls in ev.fact_types().values():
        entry = row.get(cls)
        if entry is None:
            unknown.append(fact_strategy(cls))
        elif not isinstance(entry, str) and all(guard for guard, _ in entry):
            missing = _unmatched(cls, entry)
            if missing is not None:
                unmatched.append(missing)
    named = {"dialect": dialect.name}
    return tuple(
        st.one_of(group).map(
            lambda f: msgspec.structs.replace(f, **named) if isinstance(f, ev.Requested) else f
        )
        for group in (unknown, unmatched)
        if group
    )


def rejected_facts(dialect: Dialect | str, state: str) -> st.SearchStrategy[ev.Fact]:
    """Facts ``dialect`` does not accept in ``state`` (any fact at all in a terminal state)."""
    d = find_dialect(dialect)
    if state not in d.table.rows:
        raise ValueError(f"{d.name} has no state {state!r}")
    return st.one_of(_rejected(d, state))


@st.composite
def _invalid(
    draw: st.DrawFn, dialect: Dialect, operation: str | None, max_facts: int
) -> InvalidHistory:
    # As for histories: every choice first, the prefix's facts last. The prefix is mostly the
    # whole walk (often terminal; 0, what shrinking moves towards), now and then none of it (a
    # first fact that cannot begin a stream), else a cut somewhere.
    roll, kind = draw(_ROLL), draw(_COIN)
    walk = _plan(dialect, operation, max_facts).walk(draw)
    cut = len(walk) if roll < 12 else 0 if roll < 15 else draw(st.integers(0, len(walk)))
    state = walk[cut - 1].dest if cut else START
    kinds = _rejected(dialect, state)
    bad = draw(kinds[-1] if kind else kinds[0])  # the coin picks the kind, when there are two
    prefix = [_draw_fact(draw, dialect, move, operation) for move in walk[:cut]]
    return InvalidHistory([*prefix, bad], state)


def invalid_histories(
    dialect: Dialect | str, *, operation: str | None = None, max_facts: int = 30
) -> st.SearchStrategy[InvalidHistory]:
    """A valid prefix (of up to ``max_facts - 1`` facts, possibly empty) plus exactly one fact
    the dialect rejects in the state the prefix reached — after a terminal state too.

    ``lifecycle.fold(dialect, h.facts)`` raises ``InvalidTransition`` (``StreamClosed`` after a
    terminal state) with ``.state == h.state`` and ``.fact == type(h.fact).__name__``.
    """
    d = find_dialect(dialect)
    check_operation(d, operation)
    if max_facts < 2:
        raise ValueError("max_facts must be at least 2 (a prefix and the rejected fact)")
    return _invalid(d, operation, max_facts - 1)


# -- the canonical sequence -----------------------------------------------------------------------

_ENDINGS: Final = ("succeeded", "failed", "out_of_memory", "infrastructure", "stopped", "active")


@st.composite
def canonical_histories(
    draw: st.DrawFn,
    *,
    dialect: str | None = None,
    operation: str | None = None,
    max_logs: int = 2,
) -> list[ev.Fact]:
    """Histories of the canonical sequence the engine emits (DESIGN §7): ``Requested``, some of
    ``ResourcesRequested``, ``ResourcesAssigned``, ``PreparationStarted``, ``ExecutionStarted``
    (logs anywhere), then an outcome — ``ExecutionSucceeded`` / ``ExecutionFailed`` /
    ``OutOfMemory`` once started, ``InfrastructureFailed`` or ``StopRequested`` →
    ``StoppingStarted`` → ``Stopped`` at any point — or nothing yet (still active).

    Every built-in dialect accepts them, and they agree on the outcome category. ``dialect``
    names the one in ``Requested`` (default: a built-in one); ``operation`` defaults to one
    that Qualytics has, which the other two accept too.
    """
    from lifecycle._dialects._qualytics import OPERATIONS  # noqa: PLC0415  (one fact, late)

    # the choices first, the variable-size values after (see "histories" above)
    name = dialect if dialect is not None else draw(st.sampled_from(BUILT_IN))
    op = operation if operation is not None else draw(st.sampled_from(OPERATIONS))
    ending = draw(st.sampled_from(_ENDINGS))
    started = ending in ("succeeded", "failed", "out_of_memory")  # these need ExecutionStarted
    reached = len(START_SEQUENCE) if started else draw(st.integers(0, len(START_SEQUENCE)))
    logs = st.lists(fact_strategy(ev.LogRecorded), max_size=max_logs)
    out: list[ev.Fact] = [ev.Requested(dialect=name, operation=op, name=draw(_text(12)))]
    out += draw(logs)
    for fact in START_SEQUENCE[:reached]:
        out.append(fact)
        out += draw(logs)
    if ending == "stopped":
        out += STOP_SEQUENCE(reason=draw(st.sampled_from(["user", "timeout"])), by="user")
    elif ending != "active":
        cls = {
            "succeeded": ev.ExecutionSucceeded,
            "failed": ev.ExecutionFailed,
            "out_of_memory": ev.OutOfMemory,
            "infrastructure": ev.InfrastructureFailed,
        }[ending]
        out.append(draw(fact_strategy(cls)))
    return out


# Registered at import too: when this module is what imports Hypothesis, the entry-point hook
# runs before this module is complete and leaves the registration to this line.
register_strategies()
