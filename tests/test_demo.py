"""The demo executes real processes on SQLite and ends each run as it says it does."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lifecycle._demo import amain


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the demo runs on SQLite: aiosqlite is asyncio-only


@pytest.mark.anyio
@pytest.mark.slow
async def test_demo(tmp_path: Path) -> None:
    out = io.StringIO()
    await amain(f"sqlite:///{tmp_path}/runs.db", out)
    text = out.getvalue()
    assert "nightly-profile: Success (terminal, succeeded)" in text
    assert "run 1 ⚠ Warning" in text
    assert "train-model: Stopped (terminal, cancelled)" in text
    assert "daily-etl: Out of Memory (terminal, failed)" in text
    assert "views equal the live ones: True" in text
    assert "[stderr] relation customers does not exist" in text
