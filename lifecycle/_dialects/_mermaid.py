"""Mermaid flowcharts of dialects, drawn like the seeds' diagrams.

Solid arrows are progress and success; dotted arrows end in failure or cancellation (as in the
Qualytics diagrams). Facts that share a move share an arrow. Tolerated facts are not drawn, except
``ContainerAdded`` (an extension that changes no state): a note says where a run gains containers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._declare import START

if TYPE_CHECKING:
    from ._declare import Dialect

__all__ = ["to_mermaid"]

_STYLE = {
    "succeeded": "fill:#d4f7d4,stroke:#2e7d32",
    "failed": "fill:#fbd5d5,stroke:#c62828",
    "cancelled": "fill:#eeeeee,stroke:#616161",
}


_ANY = "any active state"


def _node(name: str) -> str:
    if name == _ANY:
        return "any"
    return "start" if name == START else re.sub(r"\W", "_", name)


def to_mermaid(dialect: Dialect) -> str:
    lines = ["flowchart LR", "    start(( ))"]
    if any(t.any_source and t.dest is not None for t in dialect.transitions):
        lines.append(f'    any{{{{"{_ANY}"}}}}')
    for state in dialect.states.values():
        text = f"{state.name} (extension)" if state.extension else state.name
        lines.append(f'    {_node(state.name)}["{text}"]')
    edges: dict[tuple[str, str], list[str]] = {}
    for t in dialect.transitions:
        if t.dest is None:
            continue
        text = t.label or t.fact
        if t.when and not t.label:
            text += "(" + ", ".join(f"{k}={v}" for k, v in t.when) + ")"
        if t.extension:
            text += " (extension)"
        labels = edges.setdefault((_ANY if t.any_source else t.source, t.dest), [])
        if text not in labels:
            labels.append(text)
    for (source, dest), labels in edges.items():
        ops = [
            t[len("Requested(operation=") : -1]
            for t in labels
            if t.startswith("Requested(operation=")
        ]
        if len(ops) > 1 and len(ops) == len(labels):  # one arrow per operation reads badly
            labels[:] = ["Requested: " + ", ".join(ops)]
        arrow = "-.->" if dialect.states[dest].outcome in ("failed", "cancelled") else "-->"
        label = "<br/>".join(labels).replace('"', "'")
        lines.append(f'    {_node(source)} {arrow}|"{label}"| {_node(dest)}')
    added = [t.source for t in dialect.transitions if t.fact == "ContainerAdded"]
    if added:
        active = [s.name for s in dialect.states.values() if s.outcome is None]
        where = _ANY if sorted(added) == sorted(active) else ", ".join(added)
        lines.append(
            f'    added>"ContainerAdded (extension): a container joins the run in {where}"]'
        )
    for outcome, style in _STYLE.items():
        members = [_node(s.name) for s in dialect.states.values() if s.outcome == outcome]
        if members:
            lines.append(f"    classDef {outcome} {style}")
            lines.append(f"    class {','.join(members)} {outcome}")
    return "\n".join(lines) + "\n"
