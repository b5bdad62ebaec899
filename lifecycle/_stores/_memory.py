"""``memory://``: the whole store in a few dicts, for tests and embedding.

Works on asyncio and trio. Every append runs without an ``await`` between its checks and its
writes, so it is atomic with respect to every other task of the event loop; so is the end of a
rebuild (the records appended since its first pass folded and the read model replaced with no
``await`` between). Times are kept in UTC, as the SQLite store keeps them. Nothing survives the
process.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import anyio
import anyio.lowlevel

from lifecycle import events as ev

from ._base import (
    REBUILD_PAGE,
    Lease,
    RebuildProgress,
    RunStore,
    RunSummary,
    SummaryFold,
    Write,
    as_utc,
    check_expected,
    resolve_retry,
    summary_in_utc,
)

__all__ = ["MemoryStore"]


class MemoryStore(RunStore):
    """An in-process store. ``url`` is ``memory://``."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._log: list[ev.Recorded] = []
        self._streams: dict[str, list[ev.Recorded]] = {}
        self._by_id: dict[str, ev.Recorded] = {}
        self._summaries: dict[int, RunSummary] = {}
        self._blobs: dict[str, bytes] = {}
        self._run_ids = 0
        self._leases: dict[int, Lease] = {}
        self._changed: anyio.Event | None = None

    async def append(
        self,
        writes: Sequence[Write],
        *,
        summaries: Sequence[RunSummary] = (),
        at: _dt.datetime | None = None,
    ) -> list[ev.Recorded]:
        ids = [w.ids() for w in writes]
        flat = [i for group in ids for i in group]
        retry = resolve_retry(flat, [self._by_id.get(i) for i in flat])
        if retry is not None:
            return retry
        for w in writes:
            check_expected(w.stream, w.expected_version, len(self._streams.get(w.stream, ())))
        now = as_utc(at) if at is not None else _dt.datetime.now(_dt.UTC)
        out: list[ev.Recorded] = []
        position = len(self._log)
        times = [
            w.times(now) if w.recorded_at is None else tuple(map(as_utc, w.times(now)))
            for w in writes
        ]
        for w, group, stamps in zip(writes, ids, times, strict=True):
            stream = self._streams.setdefault(w.stream, [])
            if w.events and w.stream.startswith("run-"):
                head = w.stream[4:].partition("/")[0]
                if head.isdigit():
                    self._run_ids = max(self._run_ids, int(head))
            for fact, event_id, stamp in zip(w.events, group, stamps, strict=True):
                position += 1
                record = ev.Recorded(
                    stream=w.stream,
                    version=len(stream) + 1,
                    position=position,
                    event_id=event_id,
                    recorded_at=stamp,
                    event=fact,  # type: ignore[arg-type]
                )
                stream.append(record)
                out.append(record)
        self._log.extend(out)
        self._by_id.update((r.event_id, r) for r in out)
        for summary in summaries:
            self._summaries[summary.run_id] = summary_in_utc(summary)
        if out and self._changed is not None:
            self._changed.set()
            self._changed = None
        return out

    async def read(self, streams: Sequence[str], *, after: int = 0) -> list[ev.Recorded]:
        if len(streams) > 1:
            streams = list(dict.fromkeys(streams))  # each stream once, however often named
        found = [r for s in streams for r in self._streams.get(s, ()) if r.position > after]
        if len(streams) > 1:
            found.sort(key=lambda r: r.position)
        return found

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        # positions are 1..n with no gaps here, so the log is indexable by position
        end = len(self._log) if limit is None else min(len(self._log), after + limit)
        return self._log[max(after, 0) : end]

    async def wait(self, after: int) -> int:
        # A checkpoint even when the head is already past ``after``: a caller looping on wait
        # must still be cancellable and let other tasks run.
        await anyio.lowlevel.checkpoint()
        while len(self._log) <= after:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        return len(self._log)

    async def next_run_id(self) -> int:
        self._run_ids += 1
        return self._run_ids

    async def list_runs(
        self,
        *,
        name: str | None = None,
        state: str | None = None,
        dialect: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        start = None if start_time is None else as_utc(start_time)
        end = None if end_time is None else as_utc(end_time)
        rows = [
            s
            for s in self._summaries.values()
            if (name is None or s.name == name)
            and (state is None or s.state == state)
            and (dialect is None or s.dialect == dialect)
            and (
                (start is None and end is None)
                or (
                    s.created_at is not None  # kept in UTC (summary_in_utc)
                    and (start is None or s.created_at >= start)
                    and (end is None or s.created_at <= end)
                )
            )
        ]
        rows.sort(key=lambda s: s.run_id, reverse=True)
        return rows[:limit] if limit is not None else rows

    async def replace_summaries(self, summaries: Sequence[RunSummary]) -> None:
        self._summaries = {s.run_id: summary_in_utc(s) for s in summaries}

    async def rebuild_summaries(
        self, fold: SummaryFold, *, progress: RebuildProgress | None = None
    ) -> list[RunSummary]:
        # The log up to the head it has now, page by page, letting other tasks run (and append)
        # in between — never further, or appends could keep it going for ever. Then the records
        # appended meanwhile, the fold's rows and the replace, with no await between: atomic.
        head = len(self._log)
        after = 0
        while after < head:
            end = min(head, after + REBUILD_PAGE)
            fold.feed(self._log[after:end])
            after = end
            if progress is not None:
                progress(after, head)
            if after < head:
                await anyio.lowlevel.checkpoint()
        log = self._log
        if len(log) > after:
            fold.feed(log[after:])
        rows = fold.summaries()
        keep = fold.kept()
        if progress is not None:  # before the replace: if it raises, nothing has changed
            progress(len(log), len(log))
        before = sorted(self._summaries.values(), key=lambda s: s.run_id)
        new = {s.run_id: summary_in_utc(s) for s in rows if s.run_id not in keep}
        for run_id in keep:
            if run_id in self._summaries:
                new[run_id] = self._summaries[run_id]
        self._summaries = new
        return before

    async def put_blob(self, key: str, data: bytes) -> None:
        self._blobs[key] = bytes(data)

    async def get_blob(self, key: str) -> bytes | None:
        return self._blobs.get(key)

    async def acquire_lease(self, run_id: int, owner: str, ttl: float) -> bool:
        now = _dt.datetime.now(_dt.UTC)
        held = self._leases.get(run_id)
        if held is not None and held.owner != owner and held.expires_at > now:
            return False
        expires = now + _dt.timedelta(seconds=ttl)
        self._leases[run_id] = Lease(run_id=run_id, owner=owner, expires_at=expires)
        return True

    async def release_lease(self, run_id: int, owner: str) -> None:
        held = self._leases.get(run_id)
        if held is not None and held.owner == owner:
            del self._leases[run_id]

    async def leases(self) -> list[Lease]:
        return [self._leases[k] for k in sorted(self._leases)]
