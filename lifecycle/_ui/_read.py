"""What the dashboard's pages show, read from the run service: plain data, no web framework.

The jobs and job pages use the CLI's read model (``job_rows``, ``job_detail``: one read model,
several front ends); this module adds what only a page shows — the weekly heatmap's run starts,
a run's logs split by stream and paged, the timeline of its facts, and previews of task results.

Results are previewed only when stored as ``msgpack`` (plain data: decoding it runs no code);
a ``pickle`` result is described, never unpickled — loading a pickle runs whatever it names.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Sequence
from typing import Final

import anyio
import msgspec

from lifecycle import events as ev
from lifecycle._cli._model import job_key
from lifecycle._draw import heatmap_counts
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView, run_stream

__all__ = [
    "LOG_PAGE",
    "PREVIEW_BYTES",
    "Activity",
    "LogPage",
    "ResultInfo",
    "TimelineEntry",
    "log_page",
    "logs_of",
    "result_info",
    "timeline",
]

LOG_PAGE: Final = 500
"""Lines of a log on one page: the run page shows the last page of each log, with a link to
earlier ones, so a 100 MB log never becomes a 100 MB page."""
PREVIEW_BYTES: Final = 64 * 1024
"""Results larger than this are described, not decoded for a preview."""
PREVIEW_CHARS: Final = 4000


class LogEntry(msgspec.Struct, frozen=True):
    """One log line: where it sits in the store, when, its level and stream, and the text."""

    position: int
    at: _dt.datetime
    level: str
    stream: str
    text: str


class LogPage(msgspec.Struct, frozen=True, kw_only=True):
    """Page ``page`` of one log (0 is the newest), with the number of pages and lines."""

    task: str | None
    lines: list[LogEntry]
    page: int
    pages: int
    total: int


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One fact of a run other than a log line: when, on which stream, what, and its fields."""

    position: int
    at: _dt.datetime
    task: str | None
    fact: str
    detail: str


class ResultInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A task's stored result: its size and codec, and a preview when it is safe to show."""

    task: str | None
    key: str
    codec: str
    size: int
    preview: str | None
    note: str = ""


class Activity:
    """Run starts per job and hour, for the weekly heatmaps: read once, then kept up to date.

    The first look lists the runs created in the last 8 days (one read-model query for every
    job, not one per job); each later look lists only those created since the newest seen, so
    a page over 100,000 runs does not re-read 100,000 rows each time. A run counts at its
    creation time (a run's start as the read model can filter it: ``list(start_time=…)`` bounds
    the creation time), bucketed by UTC hour.
    """

    def __init__(self) -> None:
        self._hours: dict[str, Counter[_dt.datetime]] = {}
        self._newest: _dt.datetime | None = None
        self._at_newest: set[int] = set()  # runs created at exactly ``_newest``: counted
        self._lock = anyio.Lock()

    async def refresh(self, runs: AsyncRuns, now: _dt.datetime) -> None:
        """Count the runs created since the last look (within the last 8 days)."""
        async with self._lock:
            window = now - _dt.timedelta(days=8)
            if self._newest is None or self._newest < window:
                self._hours.clear()
                self._newest, self._at_newest = None, set()
            before, counted = self._newest, self._at_newest
            for r in await runs.list(start_time=before or window):
                at = r.created_at
                if at is None or (at == before and r.run_id in counted):
                    continue  # counted by the last look
                hour = at.astimezone(_dt.UTC).replace(minute=0, second=0, microsecond=0)
                self._hours.setdefault(job_key(r), Counter())[hour] += 1
                if self._newest is None or at > self._newest:
                    self._newest, self._at_newest = at, set()
                if at == self._newest:
                    self._at_newest.add(r.run_id)
            if self._newest == before:  # nothing newer: those at the mark are all counted
                self._at_newest = counted | self._at_newest
            for hours in self._hours.values():
                for hour in [h for h in hours if h < window]:
                    del hours[hour]

    def grid(self, name: str, now: _dt.datetime, tz: _dt.tzinfo = _dt.UTC) -> list[list[int]]:
        """Job ``name``'s 7 × 24 counts (see ``heatmap_counts``), as of the last ``refresh``."""
        return heatmap_counts(self._hours.get(name, {}), now, tz)


def _task_of(stream: str) -> str | None:
    _, slash, container = stream.partition("/")
    return container if slash else None


def logs_of(records: Sequence[ev.Recorded]) -> dict[str | None, list[LogEntry]]:
    """Log lines by task (``None`` is the run's own log), in the order recorded."""
    out: dict[str | None, list[LogEntry]] = {}
    for r in records:
        if isinstance(r.event, ev.LogRecorded):
            out.setdefault(_task_of(r.stream), []).append(
                LogEntry(r.position, r.recorded_at, r.event.level, r.event.stream, r.event.text)
            )
    return out


def log_page(lines: Sequence[LogEntry], task: str | None, page: int = 0) -> LogPage:
    """Page ``page`` of ``lines``, counted from the newest (0 = the last ``LOG_PAGE`` lines)."""
    pages = max(1, -(-len(lines) // LOG_PAGE))
    page = min(max(page, 0), pages - 1)
    end = len(lines) - page * LOG_PAGE
    return LogPage(
        task=task,
        lines=list(lines[max(0, end - LOG_PAGE) : end]),
        page=page,
        pages=pages,
        total=len(lines),
    )


def _detail(fact: ev.Fact) -> str:
    fields = msgspec.structs.asdict(fact)
    if isinstance(fact, ev.Requested):
        keep = ("operation", "name", "mode", "original_run_id", "job_version")
        fields = {k: v for k, v in fields.items() if k in keep}
    shown = {k: v for k, v in fields.items() if v not in (None, "", (), [], {})}
    return ", ".join(f"{k}={v}" for k, v in shown.items() if k != "traceback")


def timeline(records: Sequence[ev.Recorded]) -> list[TimelineEntry]:
    """Every fact of the run and its tasks but the log lines, in position order."""
    return [
        TimelineEntry(
            position=r.position,
            at=r.recorded_at,
            task=_task_of(r.stream),
            fact=type(r.event).__name__,
            detail=_detail(r.event),
        )
        for r in records
        if not isinstance(r.event, ev.LogRecorded)
    ]


async def result_info(runs: AsyncRuns, view: RunView) -> list[ResultInfo]:
    """The stored results of the run's tasks (and of the run itself), with safe previews."""
    found: list[tuple[str | None, ev.ResultStored]] = [
        (name, c.result) for name, c in view.containers.items() if c.result is not None
    ]
    if not view.containers:
        for r in await runs.store.read([run_stream(view.run_id)]):
            if isinstance(r.event, ev.ResultStored):
                found = [(None, r.event)]
    return [await _one(runs, task, fact) for task, fact in found]


async def _one(runs: AsyncRuns, task: str | None, fact: ev.ResultStored) -> ResultInfo:
    info = ResultInfo(task=task, key=fact.key, codec=fact.codec, size=fact.size, preview=None)
    if fact.codec != "msgpack":
        note = f"a {fact.codec} result: not decoded here (loading it could run code)"
        return msgspec.structs.replace(info, note=note)
    if fact.size > PREVIEW_BYTES:
        return msgspec.structs.replace(info, note="too large to preview")
    data = await runs.store.get_blob(fact.key)
    if data is None:
        return msgspec.structs.replace(info, note="its bytes are missing from the store")
    try:
        value = msgspec.msgpack.decode(data)
        text = msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError, ValueError) as exc:
        return msgspec.structs.replace(info, note=f"cannot be previewed: {exc}")
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "\n…"
    return msgspec.structs.replace(info, preview=text)
