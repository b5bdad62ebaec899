"""The store checks of the read model and of naive times fail stores that break them: reading a
stream named twice twice, comparing naive bounds as they are, keeping a naive ``at`` (or one in
another zone, or naive summary times), and rebuilds that are not atomic, stop at the head they
started from, feed records twice, replace the rows they should keep, or do not say what they
replaced. (Every backend passing them is in ``test_check_event_store.py``: they are in
``STORE_CHECKS``.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from lifecycle import events as ev
from lifecycle._stores import MemoryStore, RunStore, RunSummary, Write
from lifecycle._stores._base import RebuildProgress, SummaryFold
from lifecycle._stores._sqlite import SQLiteStore
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


class KeepsTheZoneOfAt(MemoryStore):
    """Takes a naive ``at`` as UTC, but keeps an aware one in its own zone."""

    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        at = kw.get("at")
        records = await super().append(writes, **kw)
        if at is None or at.tzinfo is None or at.utcoffset() == dt.timedelta(0):
            return records
        return [msgspec.structs.replace(r, recorded_at=at) for r in records]


class KeepsNaiveSummaryTimes(MemoryStore):
    async def append(self, writes: Sequence[Write], **kw: Any) -> list[ev.Recorded]:
        records = await super().append(writes, **kw)
        self._summaries.update((s.run_id, s) for s in kw.get("summaries", ()))
        return records


def replace_keeping(store: MemoryStore, fold: SummaryFold) -> list[RunSummary]:
    """The end of a rebuild, right: the rows of the runs the fold keeps are left as they are."""
    before = sorted(store._summaries.values(), key=lambda s: s.run_id)
    keep = fold.kept()
    new = {s.run_id: s for s in fold.summaries()}
    new.update((k, store._summaries[k]) for k in keep if k in store._summaries)
    store._summaries = new
    return before


class ReplacesLate(MemoryStore):
    """Reads, lets other tasks run, then replaces: an append in between is lost."""

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        fold.feed(await self.read_all())
        if progress is not None:
            progress(len(self._log), len(self._log))
        await anyio.sleep(0.01)
        return replace_keeping(self, fold)


class StopsAtTheHead(MemoryStore):
    """Folds the log up to the head it saw first, and replaces: no await in between, but what
    was appended since it started (by another process, say) is lost."""

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        head = len(self._log)
        fold.feed(self._log[:head])
        if progress is not None:
            progress(head, head)
        return replace_keeping(self, fold)


class ReplacesKeptRows(MemoryStore):
    """Drops the rows of the runs the fold keeps."""

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        fold.feed(self._log)
        if progress is not None:
            progress(len(self._log), len(self._log))
        before = sorted(self._summaries.values(), key=lambda s: s.run_id)
        self._summaries = {s.run_id: s for s in fold.summaries()}
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
    (KeepsANaiveAt, "naive_times", "append\\(at=datetime.datetime\\(.*not UTC-aware"),
    (KeepsTheZoneOfAt, "naive_times", "append\\(at=.*tzinfo=.*not UTC-aware"),
    (KeepsNaiveSummaryTimes, "naive_times", "a RunSummary upserted with created_at"),
    (ReplacesLate, "rebuild_summaries", "an append landed between"),
    (StopsAtTheHead, "rebuild_summaries", "an append landed between"),
    (ReplacesKeptRows, "rebuild_summaries", "run 4's row must be left as it was"),
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
        east = dt.timezone(dt.timedelta(hours=2))
        (record,) = await store.append(
            [Write(stream="s", events=(ev.LogRecorded(),))], at=naive.replace(tzinfo=east)
        )
        assert record.recorded_at == naive.replace(tzinfo=east)
        assert record.recorded_at.tzinfo is dt.UTC


class DefaultRebuild(SQLiteStore):
    """A store that keeps ``RunStore``'s default ``rebuild_summaries``: not atomic."""

    rebuild_summaries = RunStore.rebuild_summaries


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_default_rebuild_fails_the_check_on_a_store_that_awaits(
    tmp_path: Path,
) -> None:
    """A store of one's own that does not override ``rebuild_summaries`` fails its check: the
    default reads, awaits, then replaces — and an append gets in between, every time."""
    for i in range(3):

        def make(url: str = f"sqlite:///{tmp_path}/runs-{i}.db") -> RunStore:
            return DefaultRebuild(url)

        with pytest.raises(AssertionError, match="once the fold had given its rows"):
            await dict(STORE_CHECKS)["rebuild_summaries"](make)
