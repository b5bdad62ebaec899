"""Dialects: declared state machines that fold facts into states.

``_declare`` is the declaration and its validation, ``_compile`` the lookup table and the pure
step, ``_machine`` the bridge to ``transitions``, ``_mermaid`` the diagrams; the three built-in
dialects live one per module. This module is the registry.
"""

from __future__ import annotations

from lifecycle._errors import InvalidDialect, UnknownDialect

from ._compile import Table, rejection, resolve, step
from ._datatailr import datatailr
from ._declare import START, Aggregation, Dialect, Outcome, State, TransitionSpec
from ._domino import domino
from ._load import load_dialect
from ._qualytics import qualytics

__all__ = [
    "START",
    "Aggregation",
    "Dialect",
    "Outcome",
    "State",
    "Table",
    "TransitionSpec",
    "dialect",
    "dialects",
    "load_dialect",
    "register_dialect",
    "rejection",
    "resolve",
    "step",
]

_REGISTRY: dict[str, Dialect] = {d.name: d for d in (datatailr, domino, qualytics)}


def register_dialect(d: Dialect, *, replace: bool = False) -> Dialect:
    """Make ``d`` findable by ``lifecycle.dialect(d.name)`` (and so usable by run services).

    Raises ``InvalidDialect`` if another dialect already has that name, unless ``replace``.
    """
    if not isinstance(d, Dialect):
        raise InvalidDialect(f"register_dialect() takes a lifecycle.Dialect, not {d!r}")
    existing = _REGISTRY.get(d.name)
    if existing is not None and existing is not d and not replace:
        raise InvalidDialect(
            f"a dialect named {d.name!r} is already registered; pass replace=True to replace it"
        )
    _REGISTRY[d.name] = d
    return d


def dialect(name: str | Dialect) -> Dialect:
    """The registered dialect called ``name`` (a ``Dialect`` is returned as it is)."""
    if isinstance(name, Dialect):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDialect(
            f"no dialect named {name!r}; registered: {', '.join(sorted(_REGISTRY))}. "
            "Declare one with lifecycle.Dialect(...) and lifecycle.register_dialect()."
        ) from None


def dialects() -> dict[str, Dialect]:
    """Every registered dialect by name."""
    return dict(_REGISTRY)
