"""Stateful tests of whatever records facts (:class:`RunStateMachine`), and the differential
check that a dialect's compiled fold and its ``transitions`` machine agree (:func:`check_dialect`).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from lifecycle import events as ev
from lifecycle._blocking import Runs
from lifecycle._canonical import stop_facts
from lifecycle._dialects import START, Dialect, step
from lifecycle._dialects import dialect as find_dialect
from lifecycle._errors import InvalidTransition, StreamClosed
from lifecycle._views import RunView, fold, parse_stream

from ._paths import Move, paths
from ._strategies import _draw_fact, _plan, histories, invalid_histories, rejected_facts

__all__ = ["RunStateMachine", "check_dialect", "fold_states", "machine_states"]


# -- the compiled fold against the transitions machine --------------------------------------------


def fold_states(dialect: Dialect | str, facts: Sequence[ev.Fact]) -> tuple[list[str], int | None]:
    """The state after each fact the compiled table accepts, and the index of the first fact it
    rejects (``None`` when it accepts them all)."""
    d = find_dialect(dialect)
    state, out = START, list[str]()
    for i, fact in enumerate(facts):
        try:
            state = step(d, state, fact)
        except InvalidTransition:
            return out, i
        out.append(state)
    return out, None


def machine_states(
    dialect: Dialect | str, facts: Sequence[ev.Fact]
) -> tuple[list[str], int | None]:
    """Like :func:`fold_states`, but by driving ``dialect.machine()`` (the ``transitions``
    library) with ``model.trigger(type(fact).__name__, fact=fact)``: a ``MachineError``, an
    unknown trigger or a ``False`` result is a rejection."""
    from transitions import MachineError  # noqa: PLC0415  (only the differential test needs it)

    d = find_dialect(dialect)
    model = types.SimpleNamespace()
    d.machine(model)
    out: list[str] = []
    for i, fact in enumerate(facts):
        try:
            accepted = model.trigger(type(fact).__name__, fact=fact)
        except (MachineError, AttributeError):
            accepted = False
        if not accepted:
            return out, i
        out.append(model.state)
    return out, None


def check_dialect(
    dialect: Dialect | str, *, operation: str | None = None, max_examples: int = 100
) -> None:
    """The property tests every dialect should pass, in one call (raises ``AssertionError`` with
    Hypothesis' shrunk counterexample):

    - every valid history folds, and the ``transitions`` machine goes through the same states;
    - every invalid history is rejected exactly at its last fact, with the state the prefix
      reached, by the fold and by the machine alike;
    - every path (shortest, simple, transition-covering) folds to the state it names.
    """
    d = find_dialect(dialect)
    run = settings(max_examples=max_examples, deadline=None)

    @run
    @given(histories(d, operation=operation))
    def valid(facts: list[ev.Fact]) -> None:
        folded = fold_states(d, facts)
        assert folded[1] is None, f"fold rejects fact #{folded[1]} of a valid history"
        assert machine_states(d, facts) == folded, "fold and transitions machine disagree"

    @run
    @given(invalid_histories(d, operation=operation))
    def invalid(h: Any) -> None:
        rejected: InvalidTransition | None = None
        try:
            fold(d, h.facts)
        except InvalidTransition as exc:
            rejected = exc
        assert rejected is not None, f"fold accepted {h.fact!r} in {h.state!r}"
        assert (rejected.state, rejected.fact) == (h.state, type(h.fact).__name__), rejected
        folded = fold_states(d, h.facts)
        assert folded[1] == h.index
        assert machine_states(d, h.facts) == folded, "fold and transitions machine disagree"

    valid()
    invalid()
    for kind in ("shortest", "simple", "transitions"):
        for path in paths(d, kind, operation=operation):
            assert fold(d, path.facts).state == path.final, path.describe()


# -- the stateful test base -----------------------------------------------------------------------


@dataclass
class _Stream:
    """What the model expects of one stream."""

    dialect: Dialect
    state: str
    version: int = 1

    @property
    def terminal(self) -> bool:
        return self.dialect.table.outcome[self.state] is not None

    def take(self, facts: Sequence[ev.Fact]) -> None:
        for fact in facts:
            self.state = step(self.dialect, self.state, fact)
        self.version += len(facts)


@dataclass
class _Run:
    dialect: Dialect
    run: _Stream
    containers: dict[str, _Stream]
    final: RunView | None = None  # the view when it was first seen terminal

    def stream(self, container: str | None) -> _Stream:
        return self.run if container is None else self.containers[container]


@dataclass(frozen=True)
class _Ack:
    """An acknowledged append, kept to re-send."""

    run_id: int
    container: str | None
    facts: tuple[ev.Fact, ...]
    event_ids: tuple[str, ...]
    records: list[ev.Recorded] = field(compare=False)


class RunStateMachine(RuleBasedStateMachine):
    """A Hypothesis stateful test of whatever records facts: subclass it, say how to append, get
    the rules and invariants for free.

    Rules: create runs (of each dialect in :attr:`dialects`, each operation, with containers
    where the operation has them); append a batch of valid facts, drawn from the current state's
    row of the compiled table, to the run or a container; append a batch that ends in a fact the
    dialect rejects — it must raise ``InvalidTransition`` and write nothing; re-send an
    acknowledged append with the same event ids — it must return the same records and write
    nothing; abort a run.

    Invariants, after every step, for every run: replaying its history (``lifecycle.fold``)
    equals the live view; the live view is in the state the model expects; versions are dense
    (1..n per stream) and positions increase; a terminal run has only terminal containers, and
    once terminal it never changes again.

    By default the machine drives a :class:`lifecycle.Runs` on ``memory://``. To test your own
    integration, override the hooks: :meth:`make_runs` (a ``lifecycle.Runs`` on the store your
    code writes to: the invariants read through it), and :meth:`create`, :meth:`append`,
    :meth:`abort` to go through your code. Your dialect must be registered
    (``lifecycle.register_dialect``). A worked example::

        import lifecycle
        from hypothesis import settings
        from lifecycle.testing import RunStateMachine

        class MyOrchestratorMachine(RunStateMachine):
            dialects = ("mine",)

            def make_runs(self):
                self.orchestrator = MyOrchestrator("memory://")   # yours
                return lifecycle.Runs(self.orchestrator.store)    # the store it writes to

            def append(self, run_id, facts, *, container, event_ids):
                return self.orchestrator.report(run_id, facts, container=container,
                                                event_ids=event_ids)

        TestMyOrchestrator = MyOrchestratorMachine.TestCase
        TestMyOrchestrator.settings = settings(max_examples=30, stateful_step_count=25,
                                               deadline=None)
    """

    dialects: ClassVar[Sequence[str | Dialect]] = ("datatailr", "domino", "qualytics")
    """The dialects runs are created in (registered names or registered ``Dialect`` objects)."""

    container_names: ClassVar[Sequence[str]] = ("extract", "transform", "load")
    """Names drawn for containers, where an operation has them."""

    max_batch: ClassVar[int] = 3
    """The most facts in one append."""

    full_check_every: ClassVar[int] = 10
    """The invariants check the runs the last step acted on, and every run each this many steps
    (reading every run after every step makes long tests slow)."""

    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.service = self.make_runs()
        self.service.__enter__()
        self.model: dict[int, _Run] = {}
        self.acks: list[_Ack] = []
        self.touched: set[int] = set()  # runs a rule acted on since the invariants last ran
        self.checks = 0

    # -- hooks: override these to test your own integration ----------------------------------------

    def make_runs(self) -> Runs:
        """A fresh, not yet entered ``lifecycle.Runs`` (the machine enters and closes it); the
        invariants read through it. Default: ``lifecycle.Runs("memory://")``."""
        return Runs("memory://")

    def create(self, dialect: str, operation: str | None, containers: Sequence[str]) -> int:
        """Create a run; return its id."""
        return self.service.create(dialect, operation=operation, containers=containers).run_id

    def append(
        self,
        run_id: int,
        facts: Sequence[ev.Fact],
        *,
        container: str | None,
        event_ids: Sequence[str],
    ) -> list[ev.Recorded]:
        """Append a batch to the run (or one container) atomically; return its records. Must
        raise ``InvalidTransition`` (and write nothing) for a batch the dialect rejects, and
        return the original records for a re-sent batch (same ``event_ids``)."""
        return self.service.record(run_id, facts, container=container, event_ids=event_ids)

    def abort(self, run_id: int) -> None:
        """Stop the run and its active containers (``StreamClosed`` if it already ended)."""
        self.service.abort(run_id)

    def get(self, run_id: int) -> RunView:
        """The live view of the run."""
        return self.service.get(run_id)

    def history(self, run_id: int) -> list[ev.Recorded]:
        """Every record of the run and its containers, in position order."""
        return self.service.history(run_id)

    def teardown(self) -> None:
        self.service.close()

    # -- rules ------------------------------------------------------------------------------------

    @rule(target=runs, data=st.data())
    def create_run(self, data: st.DataObject) -> int:
        name = data.draw(st.sampled_from(self.dialects), label="dialect")
        d = find_dialect(name)
        operation = None
        if d.operations is not None:
            operation = data.draw(st.sampled_from(d.operations), label="operation")
        containers: list[str] = []
        if d.has_containers(operation or "run") and self.container_names:
            containers = data.draw(
                st.lists(st.sampled_from(self.container_names), unique=True), label="containers"
            )
        run_id = self.create(d.name, operation, containers)
        assert run_id not in self.model, f"run id {run_id} handed out twice"
        self.touched.add(run_id)
        op = operation or "run"
        child = d.containers
        self.model[run_id] = _Run(
            d,
            _Stream(d, d.initial_state(op)),
            {c: _Stream(child, child.initial_state(op)) for c in containers} if child else {},
        )
        return run_id

    def _streams(self, run: _Run, *, active: bool) -> list[str | None]:
        streams: list[str | None] = [None, *run.containers]
        return [s for s in streams if not active or not run.stream(s).terminal]

    def _valid_batch(self, data: st.DataObject, run: _Run, container: str | None) -> list[ev.Fact]:
        """Up to ``max_batch`` facts the stream accepts one after another (none that would end
        the run while a container is still active: the service refuses that)."""
        stream = run.stream(container)
        plan = _plan(stream.dialect, None, 30)
        blocked = container is None and any(not c.terminal for c in run.containers.values())
        # the aggregation policy: a container that failed (or was cancelled) under ``fail``
        # rules out the run's success — the service refuses it (tests/test_phases.py)
        outcomes = {c.dialect.table.outcome[c.state] for c in run.containers.values()}
        no_success = (
            container is None
            and run.dialect.aggregation == "fail"
            and bool(outcomes & {"failed", "cancelled"})
        )
        state, batch = stream.state, list[ev.Fact]()
        size = data.draw(st.integers(1, self.max_batch), label="batch size")
        while len(batch) < size and stream.dialect.table.outcome[state] is None:
            options: list[Move] = [
                m
                for group in plan.groups[state]
                for m in group
                if not (blocked and stream.dialect.table.outcome[m.dest] is not None)
                and not (no_success and stream.dialect.table.outcome[m.dest] == "succeeded")
                # the service adds a container with it (checked in tests/test_container_added.py)
                and m.fact is not ev.ContainerAdded
            ]
            if not options:
                break
            move = data.draw(st.sampled_from(options), label="move")
            batch.append(_draw_fact(data.draw, stream.dialect, move, None))
            state = move.dest
        return batch

    @rule(run_id=runs, data=st.data())
    def append_valid(self, run_id: int, data: st.DataObject) -> None:
        run = self.model[run_id]
        self.touched.add(run_id)
        streams = self._streams(run, active=True)
        if not streams:
            return
        container = data.draw(st.sampled_from(streams), label="container")
        batch = self._valid_batch(data, run, container)
        if not batch:
            return
        ids = tuple(ev.new_event_id() for _ in batch)
        records = self.append(run_id, batch, container=container, event_ids=ids)
        stream = run.stream(container)
        assert [r.event for r in records] == batch, "records do not hold the facts appended"
        assert [r.version for r in records] == list(
            range(stream.version + 1, stream.version + 1 + len(batch))
        ), "versions of an append are not the next ones of the stream"
        assert [r.event_id for r in records] == list(ids), "event ids were not kept"
        stream.take(batch)
        self.acks.append(_Ack(run_id, container, tuple(batch), ids, records))

    @rule(run_id=runs, data=st.data())
    def append_invalid(self, run_id: int, data: st.DataObject) -> None:
        run = self.model[run_id]
        self.touched.add(run_id)
        container = data.draw(st.sampled_from(self._streams(run, active=False)), label="stream")
        stream = run.stream(container)
        batch: list[ev.Fact] = []
        if not stream.terminal and data.draw(st.booleans(), label="valid facts first"):
            batch = self._valid_batch(data, run, container)
        state = stream.state
        for fact in batch:
            state = step(stream.dialect, state, fact)
        bad = data.draw(rejected_facts(stream.dialect, state), label="rejected fact")
        before = self.history(run_id)
        try:
            self.append(
                run_id,
                [*batch, bad],
                container=container,
                event_ids=[ev.new_event_id() for _ in range(len(batch) + 1)],
            )
        except InvalidTransition:
            pass
        else:
            raise AssertionError(f"{bad!r} was accepted in {state!r}")
        assert self.history(run_id) == before, "a rejected append wrote something"

    @precondition(lambda self: bool(self.acks))
    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        ack = data.draw(st.sampled_from(self.acks), label="acknowledged append")
        self.touched.add(ack.run_id)
        before = self.history(ack.run_id)
        again = self.append(ack.run_id, ack.facts, container=ack.container, event_ids=ack.event_ids)
        assert again == ack.records, "a re-sent append did not return the original records"
        assert self.history(ack.run_id) == before, "a re-sent append wrote something"

    @rule(run_id=runs)
    def abort_run(self, run_id: int) -> None:
        run = self.model[run_id]
        self.touched.add(run_id)
        if run.run.terminal:
            before = self.history(run_id)
            try:
                self.abort(run_id)
            except StreamClosed:
                pass
            else:
                raise AssertionError(f"run {run_id} ended {run.run.state!r} but abort() passed")
            assert self.history(run_id) == before, "aborting an ended run wrote something"
            return
        try:
            planned: dict[str | None, list[ev.Fact]] = {
                c: stop_facts(run.dialect.containers or run.dialect, s.state)
                for c, s in run.containers.items()
            }
            planned[None] = stop_facts(run.dialect, run.run.state)
        except ValueError:
            return  # this dialect cannot stop from here: nothing to test
        self.abort(run_id)
        for container, facts in planned.items():
            run.stream(container).take(facts)

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def replay_equals_live_view(self) -> None:
        self.checks += 1
        due = self.model if self.checks % self.full_check_every == 0 else self.touched
        self.touched = set()
        for run_id in sorted(due):
            run = self.model[run_id]
            history = self.history(run_id)
            live = self.get(run_id)
            replay = fold(run.dialect, history)
            assert replay == live, f"run {run_id}: replay {replay!r} != live view {live!r}"
            self._check_model(run_id, run, live)
            self._check_dense(run_id, history)
            self._check_terminal(run_id, run, live)

    def _check_model(self, run_id: int, run: _Run, live: RunView) -> None:
        expected = (run.run.state, run.run.version)
        assert (live.state, live.version) == expected, f"run {run_id}: expected {expected}"
        for name, stream in run.containers.items():
            c = live.containers.get(name)
            assert c is not None, f"run {run_id}: container {name!r} is missing"
            assert (c.state, c.version) == (stream.state, stream.version), (
                f"run {run_id}/{name}: expected {(stream.state, stream.version)}"
            )

    @staticmethod
    def _check_dense(run_id: int, history: list[ev.Recorded]) -> None:
        positions = [r.position for r in history]
        assert positions == sorted(set(positions)), f"run {run_id}: positions not increasing"
        versions: dict[str, int] = {}
        for record in history:
            parse_stream(record.stream)
            expected = versions.get(record.stream, 0) + 1
            assert record.version == expected, (
                f"{record.stream}: version {record.version} where {expected} was due"
            )
            versions[record.stream] = expected

    @staticmethod
    def _check_terminal(run_id: int, run: _Run, live: RunView) -> None:
        if live.terminal:
            active = [n for n, c in live.containers.items() if not c.terminal]
            assert not active, f"run {run_id} ended {live.state!r} with active containers {active}"
        if run.final is not None:
            assert live == run.final, f"run {run_id} changed after it ended {run.final.state!r}"
        elif live.terminal:
            run.final = live
