"""Pictures of jobs and runs as SVG text: the DAG, the last-runs strip, the weekly heatmap.

One implementation for every front end that draws (the ``lifecycle ui`` dashboard, the notebook
explorer): standard library only, pure functions from plain data to an ``<svg>`` string, so a
front end embeds it inline and a test reads it as XML.

Every string that came from a store (task names, states, reasons) is *data*: it is escaped for
XML (``<``, ``&``, quotes) and its control characters are shown as their escapes (``\\x1b``), which
XML 1.0 could not even carry. Colours follow the run's outcome, the same palette for a run and a
container (as the seeds' badges do); the Warning indicator is a mark beside a succeeded run, never
a colour of its own state.

Layout of the DAG: layered (Sugiyama-style) — each task in the column of its longest path from a
root, tasks ordered within a column by the mean position of their upstream tasks (a few sweeps to
uncross edges), edges drawn as curves from right to left sides. Long names are shortened on the
box and given whole in its ``<title>`` tooltip, so a 100-task DAG stays readable: columns grow
downward, the picture scrolls rather than shrinks.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, NamedTuple

__all__ = [
    "COLOURS",
    "DagNode",
    "StripRun",
    "colour",
    "dag_svg",
    "escape",
    "heatmap_counts",
    "heatmap_svg",
    "layers",
    "strip_svg",
    "visible",
]

COLOURS: Final[dict[str | None, str]] = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#6a1b9a",
    None: "#1565c0",  # active
}
"""Fill colour per outcome; ``None`` is a run or task still active."""
PENDING: Final = "#9e9e9e"  # a task with no state yet (a definition, not a run)
WARNING: Final = "#f9a825"

_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with its control characters (ESC, BEL, bidi overrides, …) shown as their
    escapes (``\\x1b``); tabs and newlines kept. For text a page inserts as text (no markup)."""
    return _UNSAFE.sub(_visible, str(text))


def escape(text: object) -> str:
    """``text`` safe inside HTML or SVG text and attribute values: markup characters escaped,
    control characters shown as their escapes (see ``visible``)."""
    return html.escape(visible(text), quote=True)


def colour(outcome: str | None, *, pending: bool = False) -> str:
    """The fill for an outcome (grey for ``pending``: nothing has run)."""
    return PENDING if pending else COLOURS.get(outcome, COLOURS[None])


def _svg(width: float, height: float, body: Iterable[str], label: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{"".join(body)}</svg>'
    )


# -- the DAG --------------------------------------------------------------------------------------


class DagNode(NamedTuple):
    """One task to draw: its name, upstream names, and state (``None`` when not run)."""

    name: str
    depends_on: Sequence[str] = ()
    state: str | None = None
    outcome: str | None = None
    detail: str = ""  # more tooltip text (a reason, a duration)


def layers(nodes: Sequence[DagNode]) -> list[list[str]]:
    """Tasks by column: the length of each one's longest path from a root, then ordered within
    a column to reduce crossings (barycentre sweeps). Unknown upstream names are ignored; a
    cycle (which a valid DAG cannot have) is broken where it is met."""
    known = {n.name: n for n in nodes}
    depth: dict[str, int] = {}
    on_path: set[str] = set()

    def visit(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in on_path:
            return -1
        on_path.add(name)
        ups = [visit(d) for d in known[name].depends_on if d in known]
        on_path.discard(name)
        depth[name] = 1 + max(ups, default=-1)
        return depth[name]

    for n in nodes:
        visit(n.name)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in nodes:
        columns[depth[n.name]].append(n.name)
    ups = {n.name: [d for d in n.depends_on if d in known] for n in nodes}
    downs: dict[str, list[str]] = {n.name: [] for n in nodes}
    for name, deps in ups.items():
        for d in deps:
            downs[d].append(name)
    for sweep in range(4):
        forward = sweep % 2 == 0
        order = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for i in order:
            ref = columns[i - 1] if forward else columns[i + 1]
            where = {name: k for k, name in enumerate(ref)}
            links = ups if forward else downs
            columns[i].sort(key=lambda name: _barycentre(links[name], where))
    return columns


def _barycentre(linked: Sequence[str], where: Mapping[str, int]) -> float:
    placed = [where[d] for d in linked if d in where]
    return sum(placed) / len(placed) if placed else float(len(where))


_BOX_W: Final = 150
_BOX_H: Final = 30
_GAP_X: Final = 60
_GAP_Y: Final = 12
_PAD: Final = 10
_LABEL: Final = 20  # characters shown on a box; the rest is in its tooltip


def _short(name: str) -> str:
    return name if len(name) <= _LABEL else name[: _LABEL - 1] + "…"


def dag_svg(nodes: Sequence[DagNode], *, href: Callable[[str], str] | None = None) -> str:
    """The DAG as SVG: boxes coloured by state, edges upstream → downstream, each box's tooltip
    the task's name, state and ``detail``; ``href(name)`` makes each box a link."""
    cols = layers(nodes)
    by_name = {n.name: n for n in nodes}
    at: dict[str, tuple[float, float]] = {}
    for i, col in enumerate(cols):
        for k, name in enumerate(col):
            at[name] = (_PAD + i * (_BOX_W + _GAP_X), _PAD + k * (_BOX_H + _GAP_Y))
    width = _PAD * 2 + max(len(cols), 1) * (_BOX_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max((len(c) for c in cols), default=1) * (_BOX_H + _GAP_Y) - _GAP_Y
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#607d8b"/></marker></defs><g class="edges" fill="none" stroke="#607d8b" '
        'stroke-width="1.2">'
    ]
    for n in nodes:
        for dep in n.depends_on:
            if dep not in at:
                continue
            (x1, y1), (x2, y2) = at[dep], at[n.name]
            sx, sy, ex, ey = x1 + _BOX_W, y1 + _BOX_H / 2, x2, y2 + _BOX_H / 2
            mid = (sx + ex) / 2
            body.append(
                f'<path d="M {sx:.0f} {sy:.0f} C {mid:.0f} {sy:.0f}, {mid:.0f} {ey:.0f}, '
                f'{ex:.0f} {ey:.0f}" marker-end="url(#arrow)"/>'
            )
    body.append('</g><g class="nodes" font-family="sans-serif" font-size="12">')
    for name, (x, y) in at.items():
        n = by_name[name]
        fill = colour(n.outcome, pending=n.state is None)
        tip = name if n.state is None else f"{name}: {n.state}"
        if n.detail:
            tip += f"\n{n.detail}"
        box = (
            f'<g class="task" data-task="{escape(name)}" data-state="{escape(n.state or "")}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_BOX_W}" height="{_BOX_H}" rx="5" '
            f'fill="{fill}"/><text x="{x + 8:.0f}" y="{y + 19:.0f}" fill="#fff">'
            f"{escape(_short(name))}</text></g>"
        )
        if href is not None:
            box = f'<a href="{escape(href(name))}">{box}</a>'
        body.append(box)
    body.append("</g>")
    return _svg(width, height, body, f"DAG of {len(nodes)} tasks", "dag")


# -- the last runs --------------------------------------------------------------------------------


class StripRun(NamedTuple):
    """One run of a history strip."""

    run_id: int
    state: str
    outcome: str | None
    warning: bool = False


def strip_svg(
    runs: Sequence[StripRun], *, width: int = 10, href: Callable[[int], str] | None = None
) -> str:
    """The last ``width`` runs, oldest on the left, one coloured mark each (a Warning run has a
    yellow dot on its mark); empty slots are outlined. Each mark's tooltip names the run."""
    size, gap = 14, 4
    shown = list(runs)[-width:]
    body = []
    for i in range(width):
        x = i * (size + gap)
        k = i - (width - len(shown))
        if k < 0:
            body.append(
                f'<rect x="{x}" y="1" width="{size}" height="{size}" rx="3" fill="none" '
                'stroke="#bdbdbd"/>'
            )
            continue
        r = shown[k]
        tip = f"run {r.run_id}: {r.state}" + (" ⚠ warning" if r.warning else "")
        mark = (
            f'<g class="mark" data-run="{r.run_id}" data-state="{escape(r.state)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x}" y="1" width="{size}" height="{size}" rx="3" '
            f'fill="{colour(r.outcome)}"/>'
        )
        if r.warning:
            mark += f'<circle cx="{x + size - 2}" cy="3" r="3.5" fill="{WARNING}"/>'
        mark += "</g>"
        if href is not None:
            mark = f'<a href="{escape(href(r.run_id))}">{mark}</a>'
        body.append(mark)
    return _svg(width * (size + gap) - gap, size + 2, body, f"last {len(shown)} runs", "strip")


# -- the weekly heatmap ---------------------------------------------------------------------------


def heatmap_counts(
    starts: Iterable[_dt.datetime] | Mapping[_dt.datetime, int],
    now: _dt.datetime,
    tz: _dt.tzinfo = _dt.UTC,
) -> list[list[int]]:
    """Run starts per (day, hour) over the 7 days ending today in ``tz``: 7 rows, oldest day
    first, of 24 counts. ``starts`` is the start times, or a mapping of times to how many runs
    started then; those outside the 7 days are left out."""
    today = now.astimezone(tz).date()
    first = today - _dt.timedelta(days=6)
    grid = [[0] * 24 for _ in range(7)]
    pairs = starts.items() if isinstance(starts, Mapping) else ((s, 1) for s in starts)
    for start, n in pairs:
        local = start.astimezone(tz)
        day = (local.date() - first).days
        if 0 <= day < 7:
            grid[day][local.hour] += n
    return grid


def heatmap_svg(
    counts: Sequence[Sequence[int]], now: _dt.datetime, tz: _dt.tzinfo = _dt.UTC
) -> str:
    """The 7 × 24 grid of ``heatmap_counts`` as SVG: darker is more runs; each cell with runs
    has a tooltip with its day, hour and count (empty cells have none: the grid stays small)."""
    cell, gap, left, top = 9, 1, 30, 10
    today = now.astimezone(tz).date()
    most = max((max(row) for row in counts), default=0) or 1
    body = ['<g font-family="sans-serif" font-size="8" fill="#616161">']
    for h in range(0, 24, 6):
        body.append(f'<text x="{left + h * (cell + gap)}" y="8">{h:02d}</text>')
    body.append("</g>")
    total = 0
    for d, row in enumerate(counts):
        day = today - _dt.timedelta(days=len(counts) - 1 - d)
        y = top + d * (cell + gap)
        body.append(
            f'<text x="0" y="{y + cell - 1}" font-family="sans-serif" font-size="8" '
            f'fill="#616161">{day.strftime("%a")}</text><g fill="#1565c0">'
        )
        for h, n in enumerate(row):
            total += n
            shade = 0.08 if n == 0 else 0.25 + 0.75 * n / most
            rect = (
                f'<rect x="{left + h * (cell + gap)}" y="{y}" width="{cell}" height="{cell}" '
                f'fill-opacity="{shade:.2f}"'
            )
            if n == 0:  # most cells: kept small, a page shows one grid per job
                body.append(rect + "/>")
                continue
            tip = f"{day.isoformat()} {h:02d}:00–{h:02d}:59: {n} run{'s' if n != 1 else ''}"
            body.append(f'{rect} data-count="{n}"><title>{escape(tip)}</title></rect>')
        body.append("</g>")
    width = left + 24 * (cell + gap)
    height = top + len(counts) * (cell + gap)
    return _svg(width, height, body, f"{total} run starts in the last 7 days", "heatmap")
