"""Store URLs as users write them: what ``--store``, ``LIFECYCLE_STORE`` and the workflow SDK's
``store=`` accept, read one way everywhere. Standard library only, so the CLI can use it without
loading a store.

Accepted: ``memory://`` (or ``memory:``); ``sqlite:///runs.db`` (relative to the working
directory) and ``sqlite:////abs/runs.db`` (SQLAlchemy's convention: three slashes, then the path);
any other ``scheme://…`` URL, which :func:`lifecycle.open_store` judges (it names the schemes it
supports); and a plain file path, which becomes ``sqlite:///`` + its absolute path. Anything that
looks like a URL but is not one of those — ``sqlite:/x.db``, ``sqlite://x.db``, ``memory:/`` — is
refused with :class:`~lifecycle.StoreError` instead of being taken for a path (it used to create
a folder called ``sqlite:``).
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Final

from lifecycle._errors import StoreError

__all__ = ["ACCEPTED", "sqlite_path", "store_url"]

ACCEPTED: Final = (
    "memory://, sqlite:///relative/runs.db, sqlite:////absolute/runs.db, or a plain file path"
)

_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters or more: not C:\


def store_url(value: str) -> str:
    """A store URL from what a user wrote (see the module docstring). Raises ``StoreError``
    for a malformed URL, naming the accepted forms."""
    text = value.strip()
    if not text:
        raise StoreError(f"an empty store URL: use {ACCEPTED}")
    if text in {"memory:", "memory://"}:
        return text
    scheme = _SCHEME.match(text)
    if scheme is None:
        return "sqlite:///" + urllib.parse.quote(str(Path(text).expanduser().resolve()))
    name = scheme[1].lower()
    if name == "sqlite" and text.startswith("sqlite:///") and len(text) > len("sqlite:///"):
        return text
    if name not in {"sqlite", "memory"} and text.startswith(f"{scheme[1]}://"):
        return text  # another scheme: open_store says which ones it supports
    raise StoreError(
        f"{text!r} is not a store URL: use {ACCEPTED} "
        "(a path whose first part has a colon: write it as ./that:path)"
    )


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///path`` URL names, read as the SQLite store reads it:
    ``sqlite:///runs.db`` is ``runs.db`` in the working directory, ``sqlite:////abs/runs.db``
    is absolute. ``None`` for other URLs and for an in-memory SQLite database."""
    if not url.startswith("sqlite:///"):
        return None
    raw = urllib.parse.unquote(url[len("sqlite:///") :].partition("?")[0])
    if not raw or raw == ":memory:":
        return None
    return Path(raw)
