"""Fixtures of the explorer's tests: a real SQLite store holding runs of ``flows.sales``, and a
real IPython shell with the extension loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lifecycle import Runs

from .flows import sales


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store with two runs of ``sales`` and one run that is not a workflow's."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    sales(local_run=True, store=url, progress=False)
    sales(local_run=True, store=url, progress=False)
    with Runs(url) as runs:
        runs.create("qualytics", operation="profile", containers=["orders"], name="nightly")
    return url


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, store: str) -> Iterator[InteractiveShell]:
    """IPython's shell, ``%load_ext lifecycle`` done, ``LIFECYCLE_STORE`` = ``store``."""
    monkeypatch.setenv("LIFECYCLE_STORE", store)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "lifecycle")
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        del ip.user_ns[name]
    ip.rl_next_input = None
