"""``lifecycle._draw``: SVG that parses, shows every task and edge, escapes every string, and
counts run starts in the right cells."""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from lifecycle._draw import (
    DagNode,
    StripRun,
    colour,
    dag_svg,
    escape,
    heatmap_counts,
    heatmap_svg,
    layers,
    strip_svg,
    visible,
)

SVG = "{http://www.w3.org/2000/svg}"


def _tasks(svg: str) -> dict[str, ET.Element]:
    return {
        g.get("data-task", ""): g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("data-task")
    }


def test_layers_follow_the_longest_path() -> None:
    nodes = [
        DagNode("a"),
        DagNode("b", ["a"]),
        DagNode("c", ["a", "b"]),
        DagNode("d"),
        DagNode("e", ["c", "ghost"]),  # an unknown upstream counts as none
    ]
    cols = layers(nodes)
    assert [sorted(c) for c in cols] == [["a", "d"], ["b"], ["c"], ["e"]]


def test_a_cycle_does_not_hang() -> None:
    cols = layers([DagNode("a", ["b"]), DagNode("b", ["a"])])
    assert sorted(name for col in cols for name in col) == ["a", "b"]


def test_a_wide_dag_is_drawn_whole_and_readable() -> None:
    fan = [DagNode(f"task_{i:03d}_with_a_rather_long_name", ["start"]) for i in range(120)]
    nodes = [DagNode("start", state="Completed", outcome="succeeded"), *fan]
    nodes.append(DagNode("end", [n.name for n in fan], state="Running"))
    svg = dag_svg(nodes, href=lambda n: f"/t/{n}")
    tasks = _tasks(svg)
    assert len(tasks) == 122
    root = ET.fromstring(svg)
    assert len([p for p in root.iter(f"{SVG}path") if p.get("marker-end")]) == 240
    # a long name is cut on its box and whole in its tooltip
    box = tasks["task_000_with_a_rather_long_name"]
    assert box.findtext(f"{SVG}text", "").endswith("…")
    assert box.findtext(f"{SVG}title") == "task_000_with_a_rather_long_name"
    assert tasks["start"].find(f"{SVG}rect").get("fill") == colour("succeeded")  # type: ignore[union-attr]
    assert tasks["end"].find(f"{SVG}rect").get("fill") == colour(None)  # type: ignore[union-attr]
    assert float(root.get("width", 0)) < 1000  # three columns: the picture grows down, not across


def test_same_layer_nodes_are_ordered_to_uncross_edges() -> None:
    nodes = [DagNode("a"), DagNode("b"), DagNode("y", ["b"]), DagNode("x", ["a"])]
    assert layers(nodes)[1] == ["x", "y"]


@given(st.text(min_size=1))
def test_every_string_is_escaped(name: str) -> None:
    svg = dag_svg([DagNode(name, state=name, detail=name)])
    root = ET.fromstring(svg)  # parses: nothing broke out of its text or attribute
    (task,) = [g for g in root.iter(f"{SVG}g") if g.get("data-task") is not None]
    shown = visible(name)
    assert task.findtext(f"{SVG}title") == f"{shown}: {shown}\n{shown}"
    assert "\x1b" not in svg


def test_escape_handles_markup_and_controls() -> None:
    assert escape("<script>a&b</script>\x1b[31m\"'") == (
        "&lt;script&gt;a&amp;b&lt;/script&gt;\\x1b[31m&quot;&#x27;"
    )
    assert visible("tab\tline\nbell\x07 bidi\u202e") == "tab\tline\nbell\\x07 bidi\\u202e"


def test_strip_pads_to_ten_and_marks_the_warning() -> None:
    runs = [StripRun(i, "Success", "succeeded", warning=i == 3) for i in range(1, 4)]
    root = ET.fromstring(strip_svg(runs, href=lambda r: f"/runs/{r}"))
    marks = [g for g in root.iter(f"{SVG}g") if g.get("data-run")]
    assert [g.get("data-run") for g in marks] == ["1", "2", "3"]
    empty = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == "none"]
    assert len(empty) == 7
    assert len(list(root.iter(f"{SVG}circle"))) == 1
    assert [a.get("href") for a in root.iter(f"{SVG}a")] == ["/runs/1", "/runs/2", "/runs/3"]
    assert (
        len([g for g in ET.fromstring(strip_svg(runs * 5)).iter(f"{SVG}g") if g.get("data-run")])
        == 10
    )


def test_heatmap_counts_each_start_in_its_day_and_hour() -> None:
    now = _dt.datetime(2026, 12, 5, 15, 30, tzinfo=_dt.UTC)  # a Saturday
    starts = [
        now,
        now.replace(minute=1),
        now - _dt.timedelta(days=6, hours=15),  # Sunday 00:30: the first row
        now - _dt.timedelta(days=7),  # a week ago: out of the grid
        now + _dt.timedelta(days=1),  # tomorrow: out
    ]
    grid = heatmap_counts(starts, now)
    assert grid[6][15] == 2
    assert grid[0][0] == 1
    assert sum(map(sum, grid)) == 3
    root = ET.fromstring(heatmap_svg(grid, now))
    cells = list(root.iter(f"{SVG}rect"))
    assert len(cells) == 7 * 24
    counted = {r.findtext(f"{SVG}title"): r.get("data-count") for r in cells if r.get("data-count")}
    assert counted == {
        "2026-12-05 15:00–15:59: 2 runs": "2",
        "2026-11-29 00:00–00:59: 1 run": "1",
    }


def test_heatmap_in_another_zone() -> None:
    now = _dt.datetime(2026, 12, 5, 23, 30, tzinfo=_dt.UTC)
    tokyo = _dt.timezone(_dt.timedelta(hours=9))
    grid = heatmap_counts([now], now, tokyo)
    assert grid[6][8] == 1  # 08:30 on Sunday in Tokyo: today there
