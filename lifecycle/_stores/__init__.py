"""Stores: where facts are kept. ``open_store(url)`` picks the backend by URL scheme.

- ``memory://`` — in the process (tests, embedding).
- ``sqlite:///path/to/runs.db`` — the embedded default, through aiosqlite (asyncio only).
- ``postgresql://user@host:port/db`` — one log for many hosts, through asyncpg (asyncio only).

The ``runs`` read model of either is rebuilt from the log by ``_rebuild.rebuild_summaries``
(``lifecycle rebuild``), through :meth:`RunStore.rebuild_summaries`.
"""

from __future__ import annotations

from typing import Any

from lifecycle._errors import StoreError

from ._base import (
    EventStore,
    Lease,
    RebuildProgress,
    RunGroup,
    RunStore,
    RunSummary,
    SummaryFold,
    Write,
)
from ._memory import MemoryStore

__all__ = [
    "EventStore",
    "Lease",
    "MemoryStore",
    "RebuildProgress",
    "RunGroup",
    "RunStore",
    "RunSummary",
    "SummaryFold",
    "Write",
    "open_store",
]

SCHEMES = ("memory://", "sqlite://")


def open_store(url: str | RunStore, **options: Any) -> RunStore:
    """The store a URL names (a store object is returned as it is). ``options`` go to the backend
    (e.g. ``durability="durable"`` for SQLite). The store still has to be entered
    (``async with``) before use."""
    if isinstance(url, RunStore):
        return url
    if url in {"memory://", "memory:"}:
        return MemoryStore(**options)
    if url.startswith("sqlite://"):
        from ._sqlite import SQLiteStore  # noqa: PLC0415  (aiosqlite is loaded only when used)

        return SQLiteStore(url, **options)
    if url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresStore  # noqa: PLC0415  (asyncpg: only when used)

        return PostgresStore(url, **options)
    raise StoreError(
        f"cannot open store {url!r}: supported URLs are memory://, sqlite:///path/to/runs.db "
        "and postgresql://user@host:port/db"
    )
