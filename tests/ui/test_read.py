"""What the pages read: the heatmap counts (kept incrementally), log pages, timelines, results."""

from __future__ import annotations

import datetime as _dt
import hashlib

import pytest

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._ui._read import LOG_PAGE, Activity, log_page, logs_of, result_info, timeline


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_activity_counts_each_run_once_and_catches_up() -> None:
    async with AsyncRuns("memory://") as runs:
        now = _dt.datetime.now(_dt.UTC)
        activity = Activity()
        for _ in range(3):
            await runs.create("qualytics", operation="scan", name="counted")
        await activity.refresh(runs, now)
        assert sum(map(sum, activity.grid("counted", now))) == 3
        await activity.refresh(runs, now)  # nothing new: nothing counted twice
        assert sum(map(sum, activity.grid("counted", now))) == 3
        await runs.create("qualytics", operation="scan", name="counted")
        await runs.create("qualytics", operation="scan")  # unnamed: the @qualytics job
        later = _dt.datetime.now(_dt.UTC)
        await activity.refresh(runs, later)
        assert sum(map(sum, activity.grid("counted", later))) == 4
        assert sum(map(sum, activity.grid("@qualytics", later))) == 1
        assert activity.grid("nope", later) == [[0] * 24 for _ in range(7)]
        far = later + _dt.timedelta(days=9)  # a week without runs: the grid empties
        await activity.refresh(runs, far)
        assert sum(map(sum, activity.grid("counted", far))) == 0


@pytest.mark.anyio
async def test_logs_timeline_and_pages() -> None:
    async with AsyncRuns("memory://") as runs:
        run = await runs.create("qualytics", operation="profile", containers=["a"], name="x")
        await runs.record(run.id, ev.ExecutionStarted())
        await runs.record(run.id, ev.LogRecorded(level="info", stream="system", text="run line"))
        await runs.record(run.id, ev.ExecutionStarted(), container="a")
        lines = [ev.LogRecorded(level="info", stream="stdout", text=f"a {i}") for i in range(600)]
        await runs.record(run.id, lines, container="a")
        records = await runs.history(run.id)
        logs = logs_of(records)
        assert [e.text for e in logs[None]] == ["run line"]
        assert len(logs["a"]) == 600
        last = log_page(logs["a"], "a")
        assert (last.page, last.pages, last.total) == (0, 2, 600)
        assert [e.text for e in last.lines] == [f"a {i}" for i in range(600 - LOG_PAGE, 600)]
        assert [e.text for e in log_page(logs["a"], "a", 1).lines] == [
            f"a {i}" for i in range(600 - LOG_PAGE)
        ]
        assert log_page([], None).pages == 1
        facts = [(t.task, t.fact) for t in timeline(records)]
        assert (
            facts
            == [
                (None, "Requested"),
                ("a", "Requested"),
                (None, "ExecutionStarted"),
                ("a", "ExecutionStarted"),
            ]
            or ("a", "LogRecorded") not in facts
        )


@pytest.mark.anyio
async def test_results_are_previewed_only_when_plain() -> None:
    async with AsyncRuns("memory://") as runs:
        run = await runs.create("qualytics", operation="profile", containers=["plain", "pickled"])
        blob = b"\x80\x04not really a pickle: it is never loaded"
        await runs.store.put_blob("k/pickled", blob)
        await runs.store.put_blob("k/plain", b"\x82\xa1a\x01\xa1b\x92\x02\x03")  # {"a":1,"b":[2,3]}
        await runs.record(run.id, ev.ExecutionStarted())
        for name, codec in (("plain", "msgpack"), ("pickled", "pickle")):
            data = await runs.store.get_blob(f"k/{name}")
            assert data is not None
            await runs.record(run.id, ev.ExecutionStarted(), container=name)
            stored = ev.ResultStored(
                key=f"k/{name}",
                codec=codec,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            await runs.record(run.id, [stored, ev.ExecutionSucceeded()], container=name)
        shown = {r.task: r for r in await result_info(runs, await runs.get(run.id))}
        assert shown["plain"].preview == '{\n  "a": 1,\n  "b": [\n    2,\n    3\n  ]\n}'
        assert shown["pickled"].preview is None
        assert "not decoded" in shown["pickled"].note
        assert shown["pickled"].size == len(blob)
