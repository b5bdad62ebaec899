"""Shared fixtures. Async tests run on asyncio and trio (the anyio pytest plugin), except where a
backend is asyncio-only (aiosqlite): those tests override ``anyio_backend``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of a real PostgreSQL server for this test session (``tests/_postgres.py``):
    ``LIFECYCLE_TEST_POSTGRES``, else a throwaway cluster; skips where PostgreSQL is missing,
    fails under ``CI=true``."""
    from ._postgres import start_cluster

    with start_cluster() as dsn:
        yield dsn
