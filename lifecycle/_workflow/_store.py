"""Where workflow runs are kept, and how blocking code reaches them.

The default store is ``LIFECYCLE_STORE`` when set (a URL such as ``sqlite:///runs.db`` or
``memory://``, or a plain file path), else ``~/.local/share/lifecycle/runs.db`` as
``sqlite:////home/you/.local/share/lifecycle/runs.db`` (four slashes: an absolute path, the
SQLAlchemy convention the SQLite store follows); the directory is created. The CLI calls
:func:`default_store_url` too, so both see the same history.

Every ``store=`` argument of the workflow SDK accepts:

- ``None`` — the default above;
- a URL or a path (``str`` or ``os.PathLike``) — opened, and closed again, by us;
- a :class:`~lifecycle.RunStore` object — used as it is and never closed by us (share one
  ``MemoryStore`` between calls this way; a SQLite store object must be usable from the event
  loop the call runs on, so pass SQLite as a URL to blocking calls);
- an :class:`~lifecycle.AsyncRuns` — used as it is (async callers, or a memory store);
- a :class:`~lifecycle.Runs` — its own event-loop thread runs the call.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import anyio.from_thread

from lifecycle._blocking import Runs
from lifecycle._runs import AsyncRuns
from lifecycle._store_url import store_url as _store_url
from lifecycle._stores import RunStore

__all__ = [
    "ENV_VAR",
    "StoreLike",
    "call_blocking",
    "default_store_url",
    "open_runs",
    "store_url",
]

T = TypeVar("T")

ENV_VAR = "LIFECYCLE_STORE"
"""The environment variable that names the default store."""

StoreLike: TypeAlias = "str | os.PathLike[str] | RunStore | AsyncRuns | Runs | None"
"""What a ``store=`` argument accepts (see the module docstring)."""


def store_url(value: str | os.PathLike[str]) -> str:
    """A store URL from a URL or a plain path (``runs.db`` → ``sqlite:///…/runs.db``). Raises
    ``StoreError`` for a malformed URL such as ``sqlite:/x.db`` (never taken for a path)."""
    return _store_url(os.fspath(value))


def default_store_url() -> str:
    """The store the workflow SDK and the CLI use when none is given.

    ``LIFECYCLE_STORE`` (a URL or a path) if set and not empty, else
    ``sqlite:///`` + the absolute path of ``~/.local/share/lifecycle/runs.db``. The directory
    of a SQLite path is created if it is missing.
    """
    configured = os.environ.get(ENV_VAR, "").strip()
    url = (
        store_url(configured)
        if configured
        else store_url(Path.home() / ".local" / "share" / "lifecycle" / "runs.db")
    )
    if url.startswith("sqlite:///"):
        path = urllib.parse.unquote(url.removeprefix("sqlite:///").partition("?")[0])
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


@asynccontextmanager
async def open_runs(store: StoreLike) -> AsyncIterator[AsyncRuns]:
    """An :class:`AsyncRuns` for ``store``; closed on exit only if it was opened here."""
    if isinstance(store, AsyncRuns):
        yield store
        return
    if isinstance(store, Runs):
        yield store.runs
        return
    if isinstance(store, RunStore):
        yield AsyncRuns(store)  # the caller owns the store: not entered, not closed here
        return
    url = default_store_url() if store is None else store_url(store)
    async with AsyncRuns(url) as runs:
        yield runs


def call_blocking(store: StoreLike, fn: Callable[[AsyncRuns], Awaitable[T]]) -> T:
    """Run ``await fn(runs)`` to completion from blocking code. A :class:`Runs` lends its own
    loop. Otherwise a fresh asyncio loop (aiosqlite is asyncio-only) runs the call: in this
    thread when no event loop runs here — so Ctrl-C cancels the call inside the loop, every
    store is closed before the loop is, and ``KeyboardInterrupt`` is raised afterwards — and
    in a worker thread where a loop is running already, as in Jupyter."""

    async def main() -> T:
        async with open_runs(store) as runs:
            return await fn(runs)

    if isinstance(store, Runs):
        portal: Any = store._portal
        if portal is None:
            raise RuntimeError("use Runs as a context manager: with Runs(url) as runs: ...")
        return portal.call(main)  # type: ignore[no-any-return]
    if not _loop_running():
        return anyio.run(main, backend="asyncio")
    with anyio.from_thread.start_blocking_portal("asyncio") as new_portal:
        return new_portal.call(main)


def _loop_running() -> bool:
    """Whether this thread is inside an event loop (where ``anyio.run`` cannot start one)."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())
