"""Shared fixtures. Async tests run on asyncio and trio (the anyio pytest plugin), except where a
backend is asyncio-only (aiosqlite): those tests override ``anyio_backend``."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
