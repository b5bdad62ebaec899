"""Replay: rebuild views from a recorded log and find where it stops fitting a dialect.

A replayer in the spirit of Temporal's: feed a recorded history (a JSONL file or a store) through
a dialect and report, per run, the derived view and the first fact that does not fit
(:class:`Divergence`). Uses:

- **Check a dialect edit against production logs** — replay yesterday's export under the edited
  dialect in CI; an empty ``divergences`` list means every recorded history still folds.
- **View a log under another dialect** — ``dialect="qualytics"`` folds every run through
  Qualytics' machine whatever its ``Requested`` says (a foreign log, a migration).
- **Time travel** — ``at=position`` folds only records with ``position <= at``: the views as they
  were at that point of the global order.

Folding is :class:`~lifecycle.Projector` with ``strict=False``: a run stops folding at its first
invalid fact, and its view is the run as of just before it.

A SQLite store is read through a fast path (:func:`_column_pages`): by ranges of positions, each
range gathered by SQLite into a few values in one step on the store's reader thread (no tuple,
no ``Recorded`` per fact), while the event loop decodes and folds the range before. The report
is the one ``read_all`` would give.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as _dt
import os
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import msgspec

from lifecycle import events as ev
from lifecycle._dialects import Dialect
from lifecycle._stores import EventStore, open_store
from lifecycle._stores._sqlite_pages import Columns, Page
from lifecycle._stores._sqlite_rows import from_us
from lifecycle._views import Projector, RunView, StreamFold, parse_stream

from ._jsonl import UNKNOWN_TIME, LogReader

if TYPE_CHECKING:
    from lifecycle._stores._sqlite import SQLiteStore

__all__ = ["Divergence", "ReplayReport", "areplay", "replay", "replay_records", "store_pages"]

PAGE = 10_000
"""Records per ``read_all`` call when reading a store: bounded memory, few round trips."""

COLUMN_PAGES: Final = (5_000, 1.5, 50_000)
"""Pages of a SQLite log read as columns, in positions: the first, the growth, the largest
(about 3 MB at 50 bytes a fact). The first is small, so folding starts soon. Each page costs
the reading thread a few waits for the GIL (up to 5 ms each while the event loop folds): big
pages make them small beside the reading, and pages growing by half (not doubling) keep the
reading of the next page about as long as the folding of this one."""


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """The first fact of a run that its dialect (or the one replayed under) does not accept.

    ``version`` is the offending record's own version in ``stream``; ``state`` is the state the
    stream was in; ``fact`` the fact's type name; ``dialect`` the machine that refused it (a
    container machine for container streams); ``line`` the 1-based line of a JSONL input
    (``None`` for a store).
    """

    run_id: int
    stream: str
    position: int
    version: int
    line: int | None
    dialect: str
    state: str
    fact: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line is not None else ""
        return (
            f"run {self.run_id}: {self.stream} v{self.version} ({where}position {self.position}): "
            f"{self.fact} not accepted in state {self.state!r} by {self.dialect}"
        )


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay found: a view per run and the first divergence of each run that has one.

    ``dialect`` is the dialect every run was viewed under (``None``: each run's own); ``at`` the
    time-travel position (``None``: the whole log); ``records`` how many records were read and
    ``position`` the last one's position. ``views`` holds every run that could be opened (a run
    whose first fact is not ``Requested`` has none); a diverged run's view stops just before
    its divergence.
    """

    source: str
    dialect: str | None
    at: int | None
    records: int
    position: int
    views: dict[int, RunView]
    divergences: list[Divergence]

    @property
    def ok(self) -> bool:
        """True when every run folded to the end."""
        return not self.divergences

    def divergence(self, run_id: int) -> Divergence | None:
        """The first divergence of ``run_id``, if it has one."""
        return next((d for d in self.divergences if d.run_id == run_id), None)

    def __str__(self) -> str:
        under = f"under {self.dialect}" if self.dialect else "under each run's own dialect"
        upto = f" as of position {self.at}" if self.at is not None else ""
        counts: dict[str, int] = {}
        warnings = 0
        for view in self.views.values():
            key = view.outcome or "active"
            counts[key] = counts.get(key, 0) + 1
            warnings += view.warning
        parts = [f"{n} {k}" for k, n in sorted(counts.items())]
        if warnings:
            parts.append(f"{warnings} with warning")
        head = (
            f"replay of {self.source} {under}{upto}: {self.records} records, "
            f"{len(self.views)} runs ({', '.join(parts) or 'none'}), "
            f"{len(self.divergences)} divergence{'s' if len(self.divergences) != 1 else ''}"
        )
        return "\n".join([head, *(f"  {d}" for d in self.divergences)])


# -- folding --------------------------------------------------------------------------------------


class _Replay:
    """A strict=False projector that turns its errors into divergences as it goes.

    The projector folds nothing more into a run once it has diverged (nor opens a run whose
    first fact could not open it): a diverged run's view is the run as of just before its
    first invalid fact, and it stays that way.
    """

    def __init__(self, dialect: str | Dialect | None) -> None:
        self.projector = Projector(dialect, strict=False)
        self.divergences: list[Divergence] = []
        self.records = 0
        self.position = 0
        self._accs: dict[int, StreamFold] = {}  # by SQLite stream id
        self._run_ids: dict[int, int] = {}

    def feed(self, records: list[ev.Recorded], lines: list[int] | None = None) -> None:
        if not records:
            return
        before = len(self.projector.errors)
        self.projector.feed(records)
        self.records += len(records)
        self.position = records[-1].position
        if len(self.projector.errors) != before:
            self._diverged(before, [r.position for r in records], lines)

    def feed_columns(self, page: Columns) -> None:
        """:meth:`feed` for a page of a SQLite log read as columns (no envelope per fact)."""
        if not len(page):
            return
        before = len(self.projector.errors)
        positions = page.positions

        def record(position: int) -> ev.Recorded:
            return page.record(bisect.bisect_left(positions, position))

        self.projector._feed_columns(
            accs=self._accs,
            run_ids=self._run_ids,
            names=page.names,
            keys=page.stream_ids,
            positions=positions,
            times=page.times,
            facts=page.facts,
            to_time=from_us,
            record=record,
        )
        self.records += len(page)
        self.position = positions[-1]
        if len(self.projector.errors) != before:
            self._diverged(before, positions, None)

    def _diverged(self, before: int, positions: Sequence[int], lines: list[int] | None) -> None:
        """Turn the projector's errors after the first ``before`` into divergences."""
        for record, exc in list(self.projector.errors.values())[before:]:
            line = None
            if lines is not None:
                line = lines[bisect.bisect_left(positions, record.position)]
            self.divergences.append(
                Divergence(
                    run_id=parse_stream(record.stream)[0],
                    stream=record.stream,
                    position=record.position,
                    version=record.version,
                    line=line,
                    dialect=exc.dialect,
                    state=exc.state,
                    fact=exc.fact,
                    message=str(exc),
                )
            )

    def report(
        self, source: str, dialect: str | Dialect | None, at: int | None, *, bare: bool = False
    ) -> ReplayReport:
        views = {view.run_id: view for view in self.projector.views()}
        if bare:  # the file did not say when: show unknown times as None, as fold() of facts does
            views = {run_id: _untimed(view) for run_id, view in views.items()}
        name = dialect.name if isinstance(dialect, Dialect) else dialect
        return ReplayReport(
            source=source,
            dialect=name,
            at=at,
            records=self.records,
            position=self.position,
            views=views,
            divergences=sorted(self.divergences, key=lambda d: d.position),
        )


def _untimed(view: RunView) -> RunView:
    def clean(value: _dt.datetime | None) -> _dt.datetime | None:
        return None if value == UNKNOWN_TIME else value

    return msgspec.structs.replace(
        view,
        created_at=clean(view.created_at),
        started_at=clean(view.started_at),
        ended_at=clean(view.ended_at),
    )


def _replay_file(
    path: str | os.PathLike[str], dialect: str | Dialect | None, at: int | None
) -> ReplayReport:
    reader = LogReader(path, at=at)
    replayer = _Replay(dialect)
    for records, lines in reader.chunks():
        replayer.feed(records, lines)
    return replayer.report(reader.name, dialect, at, bare=bool(reader.bare))


async def store_pages(
    store: EventStore, *, after: int = 0, at: int | None = None, size: int = PAGE
) -> AsyncIterator[list[ev.Recorded]]:
    """Every record after ``after`` (and up to ``at``), in position order, ``size`` at a time.

    Ends at the first page shorter than ``size``: the log as it was when that page was read (a
    prefix of the global order, so no atomic append is ever split)."""
    while True:
        page = await store.read_all(after=after, limit=size)
        if at is not None and page and page[-1].position > at:
            cut = bisect.bisect_right([r.position for r in page], at)
            if cut:
                yield page[:cut]
            return
        if page:
            yield page
            after = page[-1].position
        if len(page) < size:
            return


async def _replay_store(
    store: EventStore, dialect: str | Dialect | None, at: int | None
) -> ReplayReport:
    replayer = _Replay(dialect)
    sqlite = sys.modules.get("lifecycle._stores._sqlite")  # loaded if store is a SQLiteStore
    if (
        sqlite is not None
        and isinstance(store, sqlite.SQLiteStore)
        and type(store).read_all is sqlite.SQLiteStore.read_all  # not a subclass's own
    ):
        async with contextlib.aclosing(_column_pages(store, at=at)) as pages:
            async for columns in pages:
                replayer.feed_columns(columns)
    else:
        async for page in store_pages(store, at=at):
            replayer.feed(page)
    return replayer.report(store.url or type(store).__name__, dialect, at)


_START_WAIT: Final = 0.002
"""How long the event loop waits for the reader thread to begin a page (it may be busy with
another read)."""


async def _column_pages(
    store: SQLiteStore, *, at: int | None = None, pages: tuple[int, float, int] | None = None
) -> AsyncGenerator[Columns, None]:
    """:func:`store_pages` of a SQLite store, as columns, by ranges of positions. Each page is
    read on the store's reader thread — in one SQLite step, without the GIL — while the caller
    decodes and folds the one before: two cores at work. Page sizes (in positions): ``pages``
    (first, growth, largest; default :data:`COLUMN_PAGES`). Ends with the page that reaches
    the log's last position as it was when that page was read (or ``at``). SQLite is
    asyncio-only."""
    size, growth, largest = pages or COLUMN_PAGES
    end = at if at is not None else sys.maxsize
    names: dict[int, str] = {}
    named = 0  # every stream id up to this one is in names
    after, upto = 0, min(size, end)
    pending: asyncio.Future[Page] | None = None
    if upto > after:
        pending = asyncio.ensure_future(store._read_range(after=after, upto=upto))
    try:
        while pending is not None:
            page = await pending
            pending = None
            if page.last_stream > named:  # once, unless streams are made meanwhile
                found, named = await store._read_names(after=named)
                names.update(found)
            if upto < min(page.head, end):  # read the next page while this one is folded
                size = max(size, min(int(growth * size), largest))
                started = threading.Event()
                read = store._read_range(after=upto, upto=min(upto + size, end), started=started)
                pending = asyncio.ensure_future(read)
                await asyncio.sleep(0)  # the task hands the query to the reader thread
                # and the thread needs the GIL to begin: wait for it here, briefly, rather than
                # let it wait a switch interval (5 ms) for the fold to let go
                started.wait(_START_WAIT)
            columns = page.columns(names)
            if columns is None:  # upcasters, a damaged row, gaps, huge facts: row by row
                columns = await store._read_columns(after=after, upto=upto)
            if len(columns):
                yield columns
            after, upto = upto, min(upto + size, end)
    finally:
        if pending is not None:  # the caller stopped early: nobody wants the next page
            pending.cancel()
            pending.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Page]) -> None:
    if not task.cancelled():
        task.exception()  # read, so that asyncio does not log it as never retrieved


# -- the front door -------------------------------------------------------------------------------


def _is_url(source: object) -> bool:
    return isinstance(source, str) and "://" in source


async def areplay(
    source: str | os.PathLike[str] | EventStore,
    dialect: str | Dialect | None = None,
    at: int | None = None,
) -> ReplayReport:
    """:func:`replay` for async code: the same arguments and result. A file is read in a worker
    thread; a store object is read as it is (it must be entered, and stays open); a store URL
    is opened and closed here."""
    if isinstance(source, EventStore):
        return await _replay_store(source, dialect, at)
    if _is_url(source):
        async with open_store(str(source)) as store:
            return await _replay_store(store, dialect, at)
    return await anyio.to_thread.run_sync(_replay_file, source, dialect, at)


def replay(
    source: str | os.PathLike[str] | EventStore,
    dialect: str | Dialect | None = None,
    at: int | None = None,
) -> ReplayReport:
    """Rebuild every run's view from a log and report the first divergence of each run.

    ``source`` is a JSONL file (envelopes or bare facts, ``"-"`` for standard input), a store
    URL (``sqlite:///runs.db``) or a store object. ``dialect`` views every run under that
    dialect instead of the one its ``Requested`` names. ``at`` folds only records with
    ``position <= at`` (for a bare-fact file, positions are line numbers).

    Blocking: call it from scripts and tests; from async code use :func:`areplay` (this
    function runs its own event loop for stores, on asyncio). Raises
    :class:`~lifecycle.CorruptLog` for a line that cannot be read (nothing is reported then),
    :class:`~lifecycle.UnknownDialect` for a run whose dialect is not registered (pass
    ``dialect=`` or register it).
    """
    if isinstance(source, EventStore) or _is_url(source):
        return anyio.run(partial(areplay, source, dialect, at), backend="asyncio")
    return _replay_file(source, dialect, at)


def replay_records(
    records: Iterable[ev.Recorded], dialect: str | Dialect | None = None, source: str = ""
) -> ReplayReport:
    """Replay records already in memory (e.g. a test's history)."""
    replayer = _Replay(dialect)
    replayer.feed(list(records))
    return replayer.report(source or "records", dialect, None)
