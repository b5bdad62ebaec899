"""The pytest plugin (entry point ``pytest11``): fixtures for tests that use lifecycle.

Loaded into every pytest session of everyone who installs lifecycle, so it imports nothing at
module level beyond pytest itself: lifecycle is imported inside the fixtures that need it.

- ``lifecycle_memory_store`` — a fresh ``memory://`` store (works on asyncio and trio).
- ``lifecycle_sqlite_store`` — a fresh SQLite store in ``tmp_path``, not yet entered: ``async
  with lifecycle_sqlite_store as store``. aiosqlite is asyncio-only, so under a trio
  ``anyio_backend`` the fixture skips the test.
- ``lifecycle_store_url`` — the URL ``lifecycle_runs`` opens (``memory://``); override it in a
  ``conftest.py`` to run the same tests on another store.
- ``lifecycle_runs`` — an entered ``lifecycle.AsyncRuns`` on ``lifecycle_store_url``. An async
  fixture: request it from async tests run by the anyio plugin (``@pytest.mark.anyio``).

It also names :class:`lifecycle.testing.Path` and ``HistoryReport`` parameters after their ``id``
in test ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lifecycle import AsyncRuns, MemoryStore, RunStore

__all__ = [
    "lifecycle_memory_store",
    "lifecycle_runs",
    "lifecycle_sqlite_store",
    "lifecycle_store_url",
    "pytest_make_parametrize_id",
]

_NAMED = ("lifecycle.testing._paths", "lifecycle.testing._golden")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Test ids for paths and golden histories: their own ``id``."""
    if type(val).__module__ not in _NAMED:
        return None
    ident = getattr(val, "id", None)
    return ident if isinstance(ident, str) and ident else None


@pytest.fixture
def lifecycle_memory_store() -> MemoryStore:
    """A fresh in-memory store."""
    from lifecycle import MemoryStore  # noqa: PLC0415  (keep the plugin import-light)

    return MemoryStore()


@pytest.fixture
def lifecycle_sqlite_store(tmp_path: Path, request: pytest.FixtureRequest) -> RunStore:
    """A fresh SQLite store at ``tmp_path / "runs.db"``, not yet entered (``async with``)."""
    if "anyio_backend" in request.fixturenames:
        backend: Any = request.getfixturevalue("anyio_backend")
        name = backend[0] if isinstance(backend, tuple) else backend
        if name != "asyncio":
            pytest.skip("the SQLite store runs on asyncio only (aiosqlite)")
    from lifecycle import open_store  # noqa: PLC0415  (keep the plugin import-light)

    return open_store(f"sqlite:///{tmp_path / 'runs.db'}")


@pytest.fixture
def lifecycle_store_url() -> str:
    """The store ``lifecycle_runs`` opens; override to test on another backend."""
    return "memory://"


@pytest.fixture
async def lifecycle_runs(lifecycle_store_url: str) -> AsyncIterator[AsyncRuns]:
    """An entered ``AsyncRuns`` on ``lifecycle_store_url``, closed after the test."""
    from lifecycle import AsyncRuns  # noqa: PLC0415  (keep the plugin import-light)

    async with AsyncRuns(lifecycle_store_url) as runs:
        yield runs
