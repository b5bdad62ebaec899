"""Fixtures for the engine tests: a run service on memory:// and helpers to read what was
recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import lifecycle
from lifecycle import events as ev


@pytest.fixture
async def runs() -> AsyncIterator[lifecycle.AsyncRuns]:
    async with lifecycle.AsyncRuns("memory://", poll_interval=0.05) as service:
        yield service


async def facts(runs: lifecycle.AsyncRuns, run_id: int, stream: str | None = None) -> list[str]:
    """The fact names of one stream of the run (``None``: the run stream), logs left out."""
    name = f"run-{run_id}" if stream is None else f"run-{run_id}/{stream}"
    return [
        type(r.event).__name__
        for r in await runs.history(run_id)
        if r.stream == name and not isinstance(r.event, ev.LogRecorded)
    ]


async def logs(runs: lifecycle.AsyncRuns, run_id: int, stream: str | None = None) -> list[str]:
    name = f"run-{run_id}" if stream is None else f"run-{run_id}/{stream}"
    return [
        r.event.text
        for r in await runs.history(run_id)
        if r.stream == name and isinstance(r.event, ev.LogRecorded)
    ]
