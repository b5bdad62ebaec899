"""The bridge to ``transitions``: the same declaration as a live ``Machine`` with callbacks.

Tolerated facts become internal transitions (``dest=None``: no exit/enter callbacks); ``when``
guards become ``conditions``. The fact travels as the ``fact`` keyword of the trigger, so a
callback receives it as ``event.kwargs["fact"]`` (the machine is built with ``send_event=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transitions import Machine

from ._declare import START

if TYPE_CHECKING:
    from transitions import EventData

    from ._declare import Dialect

__all__ = ["build_machine"]


def _guard(when: tuple[tuple[str, Any], ...]) -> Any:
    def condition(event: EventData) -> bool:
        fact = event.kwargs["fact"]
        return all(getattr(fact, field) == value for field, value in when)

    return condition


def build_machine(dialect: Dialect, model: Any = None, **kwargs: Any) -> Machine:
    options: dict[str, Any] = {
        "states": [START, *dialect.states],
        "initial": START,
        "auto_transitions": False,
        "send_event": True,
        "ignore_invalid_triggers": False,
    }
    options.update(kwargs)
    machine = Machine(model=model if model is not None else Machine.self_literal, **options)
    for t in dialect.transitions:
        conditions = [_guard(t.when)] if t.when else None
        machine.add_transition(t.fact, t.source, t.dest, conditions=conditions)
    return machine
