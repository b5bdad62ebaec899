"""Replay of a ``sqlite:///`` log through its fast path: the log read as columns, a page per
SQLite step on the reader thread while the event loop folds the page before. It must report
exactly what replaying the store's own records reports."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._errors import CorruptLog
from lifecycle._replay import _replayer, areplay, replay_records
from lifecycle._stores import Write
from lifecycle._stores import _sqlite_pages as sqlite_pages
from lifecycle._stores._sqlite import SQLiteStore, _on_thread
from tests.test_views_columns import random_log

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiosqlite


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


async def _fill(store: SQLiteStore, seed: int = 1, runs: int = 40) -> list[ev.Recorded]:
    """A random log of many interleaved runs (invalid facts included: the store does not
    validate), a few facts per append, each keeping its own time."""
    log = random_log(seed, runs)
    for start in range(0, len(log), 5):
        chunk = log[start : start + 5]
        await store.append([Write(stream=s, events=(f,), recorded_at=(at,)) for s, f, at in chunk])
    return await store.read_all()


def _same(got: lifecycle.ReplayReport, expected: lifecycle.ReplayReport) -> None:
    assert got.views == expected.views
    assert got.divergences == expected.divergences
    assert (got.records, got.position) == (expected.records, expected.position)


@pytest.fixture(params=[(1, 1.0, 1), (2, 1.5, 5), (1, 2.0, 1000), (1000, 1.5, 1000), None])
def pages(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, float, int]:
    """Page sizes (first, growth, largest): pages of one row, growing pages, one page, and
    the default."""
    sizes = request.param or _replayer.COLUMN_PAGES
    monkeypatch.setattr(_replayer, "COLUMN_PAGES", sizes)
    return sizes


@pytest.mark.parametrize("dialect", [None, "qualytics"])
async def test_replay_of_a_sqlite_log_equals_replay_of_its_records(
    tmp_path: Path, pages: tuple[int, float, int], dialect: str | None
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        records = await _fill(store)
        expected = replay_records(records, dialect)
        assert expected.divergences and expected.views  # the log exercises both
        got = await areplay(store, dialect)
        _same(got, expected)
        assert got.source == store.url
        # time travel: cut inside a page, at its end, before and after everything
        for at in (0, 1, 2, 3, 17, len(records) // 2, len(records) - 1, len(records) + 5):
            prefix = [r for r in records if r.position <= at]
            _same(await areplay(store, dialect, at=at), replay_records(prefix, dialect))


async def test_the_columns_of_a_page_are_its_records(tmp_path: Path) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        records = await _fill(store, seed=5, runs=10)
    with closing(sqlite3.connect(tmp_path / "runs.db")) as db:
        names: dict[int, str] = {}
        columns = sqlite_pages.columns_of(db, 3, 20, names, "runs.db")
        assert isinstance(columns.positions, range)  # dense, so not even decoded
        assert [columns.record(i) for i in range(len(columns))] == records[3:23]
        assert [columns.head(4).record(i) for i in range(4)] == records[3:7]
        whole = sqlite_pages.columns_of(db, 0, -1, names, "runs.db")
        assert [whole.record(i) for i in range(len(whole))] == records
        page = sqlite_pages.read_page(db, 0, -1)
        assert page is not None
        assert page.count == len(records) and page.last_stream == max(names)
        assert sqlite_pages.names_after(db, 0) == (names, max(names))
        assert sqlite_pages.names_after(db, 3) == (
            {k: v for k, v in names.items() if k > 3},
            max(names),
        )
        last = max(names)
        assert sqlite_pages.names_after(db, last) == ({}, last)
        ranged = sqlite_pages.read_range(db, 3, 23)
        assert ranged.head == len(records) and ranged.positions == range(4, 24)
        ranged_columns = ranged.columns(names)
        assert ranged_columns is not None
        assert [ranged_columns.record(i) for i in range(20)] == records[3:23]
        tail = sqlite_pages.read_range(db, len(records) - 2, len(records) + 50)
        assert (tail.count, tail.positions) == (2, range(len(records) - 1, len(records) + 1))
        beyond = sqlite_pages.read_range(db, len(records) + 5, len(records) + 50)
        assert (beyond.count, len(beyond.positions)) == (0, 0)
        empty = sqlite_pages.read_page(db, 10**6, 10)
        assert empty is not None
        nothing = empty.columns({})
        assert empty.count == 0 and nothing is not None and len(nothing) == 0
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 50)  # past it: read row by row
        assert sqlite_pages.names_after(db, 0) == (names, max(names))
        assert sqlite_pages.read_page(db, 0, -1) is None
        assert sqlite_pages.read_range(db, 0, 10).count == -1


async def test_positions_with_gaps_are_damage(tmp_path: Path) -> None:
    """#11.3: a store's positions are dense (one writer, ``MAX + 1`` in its transaction, no
    deletes), so missing ones are lost rows: every read of the log says so (``CorruptLog``
    naming the first missing position) rather than give the rest as if it were whole."""
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await _fill(store, seed=2, runs=10)
    with closing(sqlite3.connect(path)) as db:  # a foreign hand deleted some facts
        db.execute("DELETE FROM events WHERE position IN (4, 5, 30)")
        db.commit()
        with pytest.raises(CorruptLog, match=r":4: the store file is damaged: position 4 is"):
            sqlite_pages.columns_of(db, 0, 10, {}, str(path))
        ranged = sqlite_pages.read_range(db, 0, 10)
        assert ranged.count == 8 and ranged.columns({}) is None  # the rows say which are gone
        assert len(sqlite_pages.columns_of(db, 5, 10, {}, str(path))) == 10  # 6-15: all there
    async with SQLiteStore(url_of(path)) as store:
        with pytest.raises(CorruptLog, match="position 4 is missing"):
            await areplay(store)
        with pytest.raises(CorruptLog, match="position 30 is missing"):
            await store.read_all(after=20)


async def test_event_ids_holding_a_nul_are_read_row_by_row(
    tmp_path: Path, pages: tuple[int, float, int]
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        run = [ev.Requested(dialect="domino"), ev.ResourcesAssigned(), ev.LogRecorded()]
        await store.append([Write(stream="run-1", events=tuple(run), event_ids=("a", "b\0c", ""))])
        records = await store.read_all()
        assert [r.event_id for r in records] == ["a", "b\0c", ""]
        page = await store._read_range(after=0, upto=10)
        assert (
            page is not None and page.columns({}) is None
        )  # the ids do not split back: the rows are read instead
        _same(await areplay(store), replay_records(records))


async def test_an_old_shape_replays_through_its_upcaster(
    tmp_path: Path, pages: tuple[int, float, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both kinds of old shape: one that no longer decodes (``ResultStored`` when ``key`` was
    ``name``), and one that still does, wrongly (``ResourcesAssigned`` when ``node`` was
    ``host``: the bulk decode would drop the field; the upcaster must see it)."""
    monkeypatch.setattr(ev, "_UPCASTERS", {})
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await store.append([Write(stream="run-1", events=(ev.Requested(dialect="datatailr"),))])
    old = [
        {"type": "ResourcesRequested"},
        {"type": "ResourcesAssigned", "host": "n7"},
        {"type": "ExecutionStarted"},
        {"type": "ResultStored", "name": "r", "size": 3},
        {"type": "ExecutionSucceeded"},
    ]
    with closing(sqlite3.connect(path)) as db:
        for version, fact in enumerate(old, 2):
            db.execute(
                "INSERT INTO events VALUES (?, 1, ?, ?, 0, ?)",
                (version, version, f"old-{version}", msgspec.msgpack.encode(fact)),
            )
        db.commit()
    async with SQLiteStore(url_of(path)) as store:
        with pytest.raises(CorruptLog, match="old-5"):
            await areplay(store)

    def key_was_name(raw: dict[str, Any]) -> dict[str, Any]:
        raw["key"] = raw.pop("name")
        return raw

    def node_was_host(raw: dict[str, Any]) -> dict[str, Any]:
        if "host" in raw:
            raw["node"] = raw.pop("host")
        return raw

    ev.register_upcaster("ResultStored", key_was_name)
    ev.register_upcaster("ResourcesAssigned", node_was_host)
    async with SQLiteStore(url_of(path)) as store:
        records = await store.read_all()
        assert records[2].event == ev.ResourcesAssigned(node="n7")
        assert records[4].event == ev.ResultStored(key="r", size=3)
        report = await areplay(store)
        _same(report, replay_records(records))
        assert report.ok and report.views[1].state == "Completed"


async def test_a_damaged_row_is_a_corrupt_log(
    tmp_path: Path, pages: tuple[int, float, int]
) -> None:
    path = tmp_path / "runs.db"
    async with SQLiteStore(url_of(path)) as store:
        await _fill(store, seed=4, runs=5)
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE events SET data = x'c1' WHERE position = 6")
        db.commit()
    async with SQLiteStore(url_of(path)) as store:
        with pytest.raises(CorruptLog, match=r"position 6") as caught:
            await areplay(store)
        assert caught.value.line == 6


async def test_pages_past_sqlites_length_limit_are_read_row_by_row(
    tmp_path: Path, pages: tuple[int, float, int]
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        records = await _fill(store, seed=3, runs=20)
        expected = replay_records(records)
        assert store._reader is not None
        await _on_thread(store._reader, lambda c: c.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 300))
        page = await store._read_range(after=0, upto=100)
        assert page.count == -1 and page.head == len(records)  # too big to gather
        assert page.columns({}) is None
        assert await store.read_all() == records
        assert await store.read_all(after=7, limit=30) == records[7:37]
        _same(await areplay(store), expected)


async def test_streams_made_during_a_replay_are_named(tmp_path: Path) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        await _fill(store, seed=6, runs=3)
        pages = _replayer._column_pages(store, pages=(2, 1.0, 2))
        first = await anext(pages)  # the next page is on its way already
        for run_id in (100, 101):
            facts = (ev.Requested(dialect="domino"), ev.ResourcesAssigned())
            await store.append([Write(stream=f"run-{run_id}", events=facts)])
        rest = [page async for page in pages]
        records = await store.read_all()
        rows = [page.record(i) for page in (first, *rest) for i in range(len(page))]
        assert rows == records
        assert {"run-100", "run-101"} <= {r.stream for r in rows}


async def test_a_replay_stopped_early_leaves_nothing_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
        await _fill(store, seed=7, runs=5)
        pages = _replayer._column_pages(store, pages=(2, 1.0, 2))
        await anext(pages)
        await pages.aclose()  # the page read ahead is cancelled, or its result read
        assert len((await areplay(store, at=3)).views) > 0
    assert "never retrieved" not in caplog.text


async def test_a_subclass_that_reads_its_own_way_is_replayed_through_read_all(
    tmp_path: Path,
) -> None:
    class Newest(SQLiteStore):
        async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[Any]:
            return [r for r in await super().read_all(after=after, limit=limit) if r.position > 5]

    async with Newest(url_of(tmp_path / "runs.db")) as store:
        records = await _fill(store, seed=8, runs=5)
        report = await areplay(store)
        _same(report, replay_records([r for r in records if r.position > 5]))


async def test_replay_of_a_sqlite_url_opens_and_closes_the_store(tmp_path: Path) -> None:
    url = url_of(tmp_path / "runs.db")
    async with SQLiteStore(url) as store:
        records = await _fill(store, seed=9, runs=8)
    report = await areplay(url)
    _same(report, replay_records(records))
    first = next(r for r in records if r.stream == "run-1")
    assert report.views[1].created_at == first.recorded_at
    assert all(v.created_at and v.created_at.tzinfo is dt.UTC for v in report.views.values())
