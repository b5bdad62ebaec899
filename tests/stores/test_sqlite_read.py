"""Reads of the SQLite store (``lifecycle/_stores/_sqlite_read.py``): the stream-name cache."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lifecycle import events as ev
from lifecycle._errors import CorruptLog
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # aiosqlite runs on asyncio only, so these tests do too (the conftest runs both).
    return "asyncio"


class WatchedNames(dict[int, str]):
    """The store's stream-name cache, counting the look-ups made in it and the walks over it
    (any operation that visits every cached name)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.walks = 0

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)

    def keys(self) -> Any:
        self.walks += 1
        return super().keys()

    def __iter__(self) -> Any:
        self.walks += 1
        return super().__iter__()

    def items(self) -> Any:
        self.walks += 1
        return super().items()

    def values(self) -> Any:
        self.walks += 1
        return super().values()


async def test_a_read_costs_the_streams_asked_not_the_streams_seen(tmp_path: Path) -> None:
    """#12.3: ``read()`` took 1.2-2.7 ms instead of ~0.15 ms once the process had read 50k-100k
    streams, as the name cache was walked on every read. Now a read looks up each stream id it
    got rows of, once, and never walks the cache, whatever it holds."""
    streams = [f"run-{i}" for i in range(200)]
    async with SQLiteStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        await store.append([Write(stream=s, events=(ev.LogRecorded(text=s),)) for s in streams])
        names = store._names = WatchedNames()
        for s in streams:  # the cache fills: 200 names
            assert [r.stream for r in await store.read([s])] == [s]
        assert len(names) == len(streams)
        names.lookups = names.walks = 0
        records = await store.read(streams[7:10])
        assert [r.stream for r in records] == streams[7:10]
        assert (names.lookups, names.walks) == (3, 0)
        names.lookups = 0
        await store.read_all(after=5, limit=2)
        assert names.walks == 0
        assert names.lookups <= 2 + 1  # one per stream of the page, and its highest id


async def test_retries_in_one_batch_of_one_streams_non_adjacent_appends(tmp_path: Path) -> None:
    """The versions of one stream run 1, 2, … in a read; the rows a batch looks up by event id
    (retries) need not, and are not taken for damage."""
    async with SQLiteStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        a = Write(stream="run-1", events=(ev.LogRecorded(text="a"),), event_ids=("a",))
        b = Write(stream="run-1", events=(ev.LogRecorded(text="b"),), event_ids=("b",))
        first = await store.append([a])
        await store.append([Write(stream="run-1", events=(ev.LogRecorded(text="c"),))])
        second = await store.append([b])
        retried = await asyncio.gather(store.append([b]), store.append([a]))
        assert list(retried) == [second, first]
        assert [r.version for r in await store.read(["run-1"])] == [1, 2, 3]


async def test_a_read_of_damaged_rows_raises_corrupt_log(tmp_path: Path) -> None:
    """#11.3: rows a damaged page gives (NULLs, versions out of step) are never read as facts."""
    path = tmp_path / "runs.db"
    async with SQLiteStore(f"sqlite:///{path}") as store:
        await store.append([Write(stream="run-1", events=(ev.LogRecorded(),) * 3)])
        await store.append([Write(stream="run-2", events=(ev.LogRecorded(),))])
    with closing(sqlite3.connect(path)) as db:  # what damage reads as
        db.execute("UPDATE events SET version = 7 WHERE position = 2")
        db.execute("UPDATE events SET recorded_at = 'garbage' WHERE position = 4")
        db.commit()
    async with SQLiteStore(f"sqlite:///{path}") as store:
        with pytest.raises(CorruptLog, match=r":2: the store file is damaged: stream id 1 has"):
            await store.read(["run-1"])
        with pytest.raises(CorruptLog, match=r":4: the store file is damaged: the row at posi"):
            await store.read_all()
        assert [r.position for r in await store.read_all(limit=3)] == [1, 2, 3]
