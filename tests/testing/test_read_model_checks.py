"""The store checks of the read model and of naive times fail stores that break them: reading a
stream named twice twice, comparing naive bounds as they are, keeping a naive ``at``, and
rebuilds that are not atomic, feed records twice, or do not say what they replaced. (Every
backend passing them is in ``test_check_event_store.py``: they are in ``STORE_CHECKS``.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from lifecycle import events as ev
from lifecycle._stores import MemoryStore, RunSummary, Write
from lifecycle._stores._base import RebuildProgress, SummaryFold
from lifecycle.testing._stores import STORE_CHECKS

pytestmark = pytest.mark.anyio


class ReadsTwice(MemoryStore):
    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        found = [r for s in streams for r in self._streams.get(s, ()) if r.position > after]
        return sorted(found, key=lambda r: r.position)


class NaiveBoundsAsTheyAre(MemoryStore):
    async def list_runs(self, **kw: Any) -> list[RunSummary]:
        start, end = kw.pop("start_time", None), kw.pop("end_time", None)
        rows = await super().list_runs(**kw)
        return [
            r
            for r in rows
            if (start is None or (r.created_at is not None and r.created_at >= start))
            and (end is None or (r.created_at is not None and r.created_at <= end))
        ]


class KeepsANaiveAt(MemoryStore):
    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        at = kw.get("at")
        records = await super().append(writes, **kw)
        if at is None or at.tzinfo is not None:
            return records
        kept = [
            ev.Recorded(
                stream=r.stream,
                version=r.version,
                position=r.position,
                event_id=r.event_id,
                recorded_at=at,
                event=r.event,
            )
            for r in records
        ]
        for r in kept:
            self._log[r.position - 1] = r
            self._streams[r.stream][r.version - 1] = r
        return kept


class ReplacesLate(MemoryStore):
    """Reads, lets other tasks run, then replaces: an append in between is lost."""

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        fold.feed(await self.read_all())
        await anyio.sleep(0.01)
        before = sorted(self._summaries.values(), key=lambda s: s.run_id)
        await self.replace_summaries(fold.summaries())
        return before


class FeedsTwice(MemoryStore):
    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        fold.feed(self._log)
        return await super().rebuild_summaries(fold, progress=progress)


class SaysNothingReplaced(MemoryStore):
    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        await super().rebuild_summaries(fold, progress=progress)
        return []


BROKEN = [
    (ReadsTwice, "ordering", "read\\(\\['a', 'a'\\]\\)"),
    (NaiveBoundsAsTheyAre, "naive_times", "TypeError"),
    (KeepsANaiveAt, "naive_times", "naive: UTC"),
    (ReplacesLate, "rebuild_summaries", "an append landed between"),
    (FeedsTwice, "rebuild_summaries", "fed the fold"),
    (SaysNothingReplaced, "rebuild_summaries", "returned the rows it replaced"),
]


@pytest.mark.parametrize(
    ("store", "name", "why"), BROKEN, ids=[f"{s.__name__}-{n}" for s, n, _ in BROKEN]
)
async def test_a_broken_store_fails_its_check(
    store: type[MemoryStore], name: str, why: str
) -> None:
    with pytest.raises(AssertionError, match=f"store check {name!r} failed: .*{why}"):
        await dict(STORE_CHECKS)[name](store)


async def test_the_memory_store_reads_naive_times_as_utc() -> None:
    async with MemoryStore() as store:
        naive = dt.datetime(2026, 1, 2, 3, 4, 5)
        (record,) = await store.append([Write(stream="s", events=(ev.LogRecorded(),))], at=naive)
        assert record.recorded_at == naive.replace(tzinfo=dt.UTC)
        times = (naive, naive + dt.timedelta(seconds=1))
        written = await store.append(
            [Write(stream="s", events=(ev.LogRecorded(), ev.LogRecorded()), recorded_at=times)]
        )
        assert [r.recorded_at.tzinfo for r in written] == [dt.UTC, dt.UTC]
