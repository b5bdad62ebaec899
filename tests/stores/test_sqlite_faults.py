"""The SQLite store under faults from outside: the wrong async library, another process holding
the write lock, the file deleted or replaced while open, -wal/-shm files another user owns.
Real files, real processes (#11.5, #12)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from lifecycle import events as ev
from lifecycle._errors import StoreError
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def test_under_trio_the_store_refuses_with_a_clear_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with SQLiteStore(url_of(tmp_path / "runs.db")) as store:
            await store.append([Write(stream="s", events=(ev.LogRecorded(text="x"),))])

    with pytest.raises(StoreError, match=r"asyncio only.*not trio.*backend=\"asyncio\""):
        trio.run(main)
    assert not (tmp_path / "runs.db").exists()  # refused before anything was opened
