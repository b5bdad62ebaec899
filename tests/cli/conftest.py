"""Fixtures for the CLI tests: SQLite stores written by the run service and by the workflow SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import Histories, record_histories


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Histories]:
    """A SQLite store with the histories of ``_support.populate`` (never written to by tests)."""
    path = tmp_path_factory.mktemp("cli") / "runs.db"
    url = f"sqlite:///{path}"
    return url, record_histories(url)


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[str, Histories]:
    """The same histories in a store of the test's own, for tests that write."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    return url, record_histories(url)
