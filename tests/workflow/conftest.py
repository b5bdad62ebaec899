"""Fixtures of the workflow tests: one memory store shared by every call of a test."""

from __future__ import annotations

import pytest

from lifecycle import MemoryStore

from . import tasks


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(autouse=True)
def _reset_flaky() -> None:
    tasks.FLAKY["fail"] = True
