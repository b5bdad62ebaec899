"""``lifecycle diagram``: a dialect's state machine, as Mermaid, a table or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lifecycle._dialects import dialect as find_dialect
from lifecycle._dialects import dialects

from ._base import CliError, settings
from ._render import badge, console, print_json, safe

if TYPE_CHECKING:
    from lifecycle._dialects import Dialect

__all__ = ["diagram"]

_FORMATS = ("mermaid", "table", "json")


@click.command(short_help="A dialect's state machine (Mermaid, table, JSON).")
@click.argument("dialect", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart source, a table of states and moves, or JSON.",
)
@click.option(
    "--containers",
    is_flag=True,
    help="Draw the dialect's per-container machine instead of its run machine.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def diagram(dialect: str | None, fmt: str, containers: bool, as_json: bool) -> None:
    """Show the state machine of DIALECT (datatailr, domino, qualytics, or one registered by
    your code). Without DIALECT, list the dialects.

    Paste the Mermaid output into any Mermaid renderer (GitHub Markdown renders ```mermaid
    blocks). Solid arrows are progress, dotted ones end in failure or cancellation.
    """
    if as_json or settings().json:
        fmt = "json"
    if dialect is None:
        found = dialects()
        if fmt == "json":
            print_json([_as_json(d) for d in found.values()])
            return
        out = console()
        for name, d in found.items():
            out.print(safe(f"{name:<12} {_summary(d)}"))
        return
    d = find_dialect(dialect)
    if containers:
        if d.containers is None:
            raise CliError(f"dialect {d.name} has no per-container machine")
        d = d.containers
    if fmt == "mermaid":
        click.echo(d.to_mermaid(), nl=False)
    elif fmt == "json":
        print_json(_as_json(d))
    else:
        _table(d)


def _summary(d: Dialect) -> str:
    terminal = [s.name for s in d.states.values() if s.terminal]
    active = [s.name for s in d.states.values() if not s.terminal]
    ops = f"; operations: {', '.join(d.operations)}" if d.operations else ""
    return f"active: {', '.join(active)}; terminal: {', '.join(terminal)}{ops}"


def _as_json(d: Dialect) -> dict[str, Any]:
    return {
        "name": d.name,
        "description": d.description,
        "operations": list(d.operations) if d.operations else None,
        "initial": d.initial,
        "states": [
            {"name": s.name, "phase": s.phase, "outcome": s.outcome, "extension": s.extension}
            for s in d.states.values()
        ],
        "transitions": [
            {
                "fact": t.fact,
                "source": t.source,
                "dest": t.dest,
                "when": dict(t.when),
                "label": t.label,
                "extension": t.extension,
            }
            for t in d.transitions
        ],
        "containers": _containers_json(d),
        "container_operations": (
            sorted(d.container_operations) if d.container_operations is not None else None
        ),
    }


def _containers_json(d: Dialect) -> dict[str, Any] | str | None:
    """The container machine; its name alone when it is the run machine itself (Domino)."""
    if d.containers is None:
        return None
    if d.containers is d:
        return d.name
    return _as_json(d.containers)


def _table(d: Dialect) -> None:
    from rich.table import Table

    out = console()
    states = Table(title=f"{d.name}: states", title_justify="left", box=None)
    for column in ("STATE", "PHASE", "OUTCOME", "NOTE"):
        states.add_column(column)
    for s in d.states.values():
        states.add_row(
            badge(s.name, s.outcome if s.terminal else None),
            s.phase,
            s.outcome or "-",
            "extension" if s.extension else "",
        )
    out.print(states)
    moves = Table(title=f"{d.name}: transitions", title_justify="left", box=None)
    for column in ("FROM", "FACT", "TO", "LABEL"):
        moves.add_column(column)
    for t in d.transitions:
        if t.dest is None:
            continue  # tolerated facts change nothing
        fact = t.fact + ("(" + ", ".join(f"{k}={v}" for k, v in t.when) + ")" if t.when else "")
        label = t.label + (" (extension)" if t.extension else "")
        moves.add_row(safe(t.source), safe(fact), safe(t.dest), safe(label))
    out.print()
    out.print(moves)
