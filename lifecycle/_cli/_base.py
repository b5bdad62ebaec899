"""What every command shares: settings, the store, running async code, errors, option types.

Exit codes (documented in ``lifecycle --help``): 0 ok; 1 a run failed, or something was not
found, or the store could not be opened; 2 a usage error (click's own).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click

from lifecycle._errors import LifecycleError, StoreError
from lifecycle._store_url import sqlite_path, store_url

if TYPE_CHECKING:
    from lifecycle._runs import AsyncRuns
    from lifecycle._stores import RunStore

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "STANDALONE",
    "CliError",
    "Settings",
    "configure_logging",
    "default_store_url",
    "normalise_store_url",
    "open_runs",
    "parse_when",
    "run_async",
    "settings",
    "sqlite_path",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

T = TypeVar("T")


class CliError(click.ClickException):
    """A one-line ``error: …`` on stderr and exit code 1 (not found, failed, store trouble)."""

    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


# -- the store ------------------------------------------------------------------------------------


def default_store_url() -> str:
    """``$LIFECYCLE_STORE`` (a URL or a plain path), else ``~/.local/share/lifecycle/runs.db``.

    The workflow SDK's rule (``lifecycle._workflow._store.default_store_url``), kept here too so
    that listing runs does not import the SDK (it doubles the start-up time); a test keeps the
    two in step. Unlike the SDK's, it creates no directory: reading never creates a store.
    """
    env = os.environ.get("LIFECYCLE_STORE", "").strip()
    if env:
        return normalise_store_url(env)
    return normalise_store_url(str(Path.home() / ".local" / "share" / "lifecycle" / "runs.db"))


def normalise_store_url(value: str) -> str:
    """A URL as it is (``sqlite:///runs.db``, ``memory://``); a plain path becomes
    ``sqlite:///`` + the absolute path (``~`` expanded, URL-quoted): ``sqlite:////home/ann/runs.db``,
    exactly as the workflow SDK's ``store_url`` writes it. A malformed URL (``sqlite:/x.db``) is
    refused with one line naming the accepted forms, never taken for a path."""
    return store_url(value)


STANDALONE = False
"""Set by the console script's ``main``: only a process the CLI owns configures logging (never
one that merely imports it, such as a test runner)."""


def configure_logging(verbosity: int) -> None:
    """Send the library's structlog events to stderr, warnings and above (``-v``: info,
    ``-vv``: debug), with values neutralised like any other data, and colour only on a
    terminal without ``NO_COLOR``. The console script is an application: it may configure
    logging; the library itself never does. A no-op unless ``STANDALONE``."""
    if not STANDALONE:
        return
    import structlog

    from ._render import neutralise

    def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {k: neutralise(v) if isinstance(v, str) else v for k, v in event.items()}

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    colours = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            scrub,
            structlog.dev.ConsoleRenderer(colors=colours),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


@dataclass
class Settings:
    """The root command's options, handed to every command through ``ctx.obj``.

    ``store`` is a URL, or a store object (how in-process tests hand a ``memory://`` store
    over); ``None`` means the default (``default_store_url``).
    """

    store: str | RunStore | None = None
    json: bool = False
    verbose: int = 0

    @property
    def url(self) -> str:
        if self.store is None:
            return default_store_url()
        if isinstance(self.store, str):
            return self.store
        return self.store.url or type(self.store).__name__


def settings() -> Settings:
    """The settings of the running command."""
    ctx = click.get_current_context()
    obj = ctx.find_object(Settings)
    if obj is None:
        obj = ctx.ensure_object(Settings)
    return obj


@asynccontextmanager
async def open_runs(cfg: Settings, *, write: bool = False) -> AsyncIterator[AsyncRuns]:
    """The run service on the configured store: read-only unless ``write`` (then the store must
    exist already: an SQLite file is never created by a command that only reads or acts on
    existing runs, so a mistyped ``--store`` path says so instead of showing nothing — nor is
    an empty file made into a store: a store is never 0 bytes, even with its writes still in
    the WAL, and a read-only open refuses one too)."""
    from lifecycle._runs import AsyncRuns  # the store loads only when used

    store: str | RunStore = cfg.store if cfg.store is not None else default_store_url()
    options: dict[str, Any] = {}
    if isinstance(store, str):
        store = normalise_store_url(store)
        path = sqlite_path(store)
        if path is not None:
            if not path.exists():
                raise CliError(
                    f"no store at {path} (nothing has run there yet?); "
                    "pass --store URL or set LIFECYCLE_STORE"
                )
            if write and path.is_file() and path.stat().st_size == 0:
                raise CliError(
                    f"{path} is empty: not a lifecycle store; it was left untouched. "
                    "Pass --store URL or set LIFECYCLE_STORE"
                )
            if not write:
                options["readonly"] = True
    try:
        runs = AsyncRuns(store, **options)
        await runs.__aenter__()
    except LifecycleError:
        raise
    except (ImportError, OSError, ValueError, TypeError) as exc:
        raise StoreError(f"cannot open store {cfg.url}: {exc}") from exc
    try:
        yield runs
    finally:
        await runs.aclose()


def run_async(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function to completion on asyncio (the SQLite store needs asyncio)."""
    import anyio  # not needed to show help

    return anyio.run(fn, *args, backend="asyncio")


# -- option types ---------------------------------------------------------------------------------

_RELATIVE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*(?:ago)?\s*$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """An option callback reading a point in time: ISO 8601 (``2025-11-20``,
    ``2025-11-20T09:30``, with or without a zone; local time when without), ``now``, or an age
    before now (``30m``, ``12h``, ``7d``, ``2w``). Returns an aware UTC datetime, or ``None``."""
    if value is None:
        return None
    text = str(value).strip()
    now = _dt.datetime.now(_dt.UTC)
    if text.lower() == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        return now - _dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        at = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use ISO 8601 (2025-11-20, 2025-11-20T09:30) "
            "or an age such as 30m, 12h, 7d",
            ctx=ctx,
            param=param,
        ) from None
    if at.tzinfo is None:
        at = at.astimezone()  # naive means local time
    return at.astimezone(_dt.UTC)
