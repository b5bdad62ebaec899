"""Environments of the explorer: named stores.

The seed's ``%dt_runs --env prod`` picks a Datatailr environment. Here an environment is a store,
named by an environment variable:

- ``default`` — the store the workflow SDK and the CLI use (``LIFECYCLE_STORE``, else the default
  path; see :func:`lifecycle.default_store_url`);
- ``NAME`` — the store in ``LIFECYCLE_STORE_NAME`` (a URL or a path), for every such variable set
  and not empty: ``LIFECYCLE_STORE_PROD=sqlite:////srv/prod/runs.db`` makes ``--env prod``.

Names are lower case (``--env PROD`` and ``--env prod`` are the same environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from lifecycle._workflow._errors import WorkflowError
from lifecycle._workflow._store import ENV_VAR, default_store_url, store_url

__all__ = ["DEFAULT", "PREFIX", "environment_url", "environments", "unknown_environment"]

DEFAULT = "default"
"""The environment of ``LIFECYCLE_STORE`` (or the default path)."""

PREFIX = ENV_VAR + "_"
"""``LIFECYCLE_STORE_`` + an environment's name (upper case) names its store."""


def environments(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every environment configured in ``environ`` (default: ``os.environ``), name → store URL,
    ``default`` first, then by name. Raises ``StoreError`` for a malformed URL."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_VAR, "").strip()
    found = {DEFAULT: store_url(configured) if configured else default_store_url()}
    for key in sorted(env):
        name = key[len(PREFIX) :].lower()
        if key.startswith(PREFIX) and name and env[key].strip() and name != DEFAULT:
            found[name] = store_url(env[key].strip())
    return found


def environment_url(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The store URL of environment ``name``. Raises ``ValueError`` (a ``WorkflowError``) naming
    the variable to set when it is not configured."""
    known = environments(environ)
    url = known.get(name.lower())
    if url is None:
        raise unknown_environment(name, known)
    return url


def unknown_environment(name: str, known: Mapping[str, str]) -> WorkflowError:
    """The error for environment ``name`` missing from ``known``: it names the variable to set."""
    return WorkflowError(
        f"no environment {name!r}: set {PREFIX}{name.upper()} to its store's URL or path "
        f"(environments now: {', '.join(known)})"
    )
