"""The aggregation policy: how a run's outcome follows from its containers' (issue 13).

One definition, used by the engine when it ends a run, by the run service to refuse a run-level
success that contradicts it (for every writer, not only the engine), and by ``finish()``.

A dialect's ``aggregation`` is ``"fail"`` (Datatailr, Domino: the first container that failed
fails the run; otherwise the first that was cancelled cancels it) or ``"warn"`` (Qualytics: the
run succeeds whatever its containers did, with the Warning indicator when one did not).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from . import events as ev
from ._canonical import stop_facts
from ._dialects import Dialect
from ._errors import PolicyViolation
from ._phases import reach
from ._views import RunFold, StreamFold

__all__ = ["Verdict", "failure_of", "finish_items", "in_order", "run_ending", "verdict"]


class Verdict(NamedTuple):
    """The outcome the policy derives, and the container that decides it (``None``: none
    did — every container succeeded, or the policy is ``warn``)."""

    outcome: str
    container: str | None = None


def in_order(containers: Iterable[tuple[str, StreamFold]]) -> list[tuple[str, StreamFold]]:
    """Containers in the order they ended: by global position; one not stored yet (position 0,
    being written now) after every stored one."""
    return sorted(containers, key=lambda item: item[1].position or float("inf"))


def verdict(dialect: Dialect, ended: Iterable[tuple[str, StreamFold]]) -> Verdict:
    """The run's outcome from its terminal containers, given in the order they ended."""
    if dialect.aggregation == "warn":
        return Verdict("succeeded")
    cancelled: str | None = None
    for name, acc in ended:
        outcome = acc.outcome
        if outcome == "failed":
            return Verdict("failed", name)
        if outcome == "cancelled" and cancelled is None:
            cancelled = name
    return Verdict("succeeded") if cancelled is None else Verdict("cancelled", cancelled)


def run_ending(
    dialect: Dialect, state: str, decided: Verdict, deciding: StreamFold | None
) -> list[ev.Fact]:
    """The run-level facts that end a run in ``state`` (an active running state) as
    ``decided``: the deciding container's kind of failure, the stop sequence with its reason,
    or ``ExecutionSucceeded``."""
    if decided.outcome == "succeeded" or deciding is None:
        return [ev.ExecutionSucceeded()]
    if decided.outcome == "cancelled":
        return stop_facts(dialect, state, reason=deciding.reason or "stopped", by="engine")
    return [failure_of(decided.container or "", deciding)]


def failure_of(name: str, acc: StreamFold) -> ev.Fact:
    """The run's failure fact when container ``name`` decides it: the container's own kind."""
    fact = acc.ending
    if isinstance(fact, ev.ExecutionFailed):
        return ev.ExecutionFailed(
            error=f"container {name!r} failed: {fact.error or 'error'}", exit_code=fact.exit_code
        )
    if isinstance(fact, ev.OutOfMemory):
        return ev.OutOfMemory(limit_bytes=fact.limit_bytes)
    if isinstance(fact, ev.InfrastructureFailed):
        return ev.InfrastructureFailed(reason=fact.reason)
    return ev.ExecutionFailed(error=f"container {name!r} ended {acc.state}: {acc.reason or ''}")


def finish_items(
    run: RunFold, outcome: str | None, *, reason: str, by: str
) -> list[tuple[str | None, list[ev.Fact]]]:
    """What ``finish()`` records on an active run: the stop sequence (with ``reason``) on every
    container still active, then the run's ending — the outcome the policy derives from its
    containers, or ``outcome`` if given (validated: a success the policy contradicts raises
    ``PolicyViolation``). Pure: ``run`` is not changed."""
    if outcome not in (None, "succeeded", "failed", "cancelled"):
        raise ValueError(f"outcome must be succeeded, failed or cancelled, not {outcome!r}")
    items: list[tuple[str | None, list[ev.Fact]]] = []
    streams: dict[str, StreamFold] = {}
    for name, acc in run.containers.items():
        streams[name] = acc
        if acc.outcome is None:
            facts = stop_facts(acc.dialect, acc.state, reason=reason, by=by)
            trial = streams[name] = acc.copy()
            for fact in facts:
                trial.apply(fact)
            trial.position = 0  # ended now: after every container that ended before
            items.append((name, facts))
    d, state = run.dialect, run.run.state
    decided = verdict(d, in_order(streams.items()))
    deciding = streams[decided.container] if decided.container else None
    if outcome is not None and outcome != decided.outcome:
        if outcome == "succeeded" and decided.container is not None:
            raise PolicyViolation(
                container=decided.container,
                expected=decided.outcome,
                dialect=d.name,
                state=state,
                fact="finish(outcome='succeeded')",
                stream=run.run.stream,
                hint=f"Container {decided.container!r} ended "
                f"{streams[decided.container].state}: under {d.name}'s aggregation policy "
                f"({d.aggregation!r}) the run ends {decided.outcome}.",
            )
        decided, deciding = Verdict(outcome), None
    if decided.outcome == "cancelled":
        why = deciding.reason if deciding is not None and deciding.reason else reason
        ending = stop_facts(d, state, reason=why, by=by)
    elif decided.outcome == "failed":
        final = (
            failure_of(decided.container or "", deciding)
            if deciding is not None
            else ev.ExecutionFailed(error=reason)
        )
        ending = reach(d, state, final, stream=run.run.stream)
    else:
        ending = reach(d, state, ev.ExecutionSucceeded(), stream=run.run.stream)
    items.append((None, ending))
    return items
