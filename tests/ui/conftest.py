"""Fixtures for the dashboard's tests: stores recorded by ``_support.populate`` and clients that
hold the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal
from starlette.testclient import TestClient

from lifecycle._ui import create_app

from ._support import Made, populate_url

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Made]:
    """A SQLite store with the histories of ``populate`` (never written to by tests)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'runs.db'}"
    return url, populate_url(url)


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[str, Made]:
    """The same histories in a store of the test's own, for tests that act."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    return url, populate_url(url)


def portal(client: TestClient) -> BlockingPortal:
    """The portal to the client's event loop (the app's): to await on it from a test."""
    assert client.portal is not None, "use the client as a context manager"
    return client.portal


def signed_in(url: str, *, read_only: bool = False) -> TestClient:
    """A client of the dashboard on ``url`` (it signs in with ``GET /?token=TOKEN``)."""
    return TestClient(create_app(url, token=TOKEN, read_only=read_only))


@pytest.fixture
def reader(recorded: tuple[str, Made]) -> Iterator[TestClient]:
    """A signed-in client on the shared store."""
    with signed_in(recorded[0]) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 200
        yield client


@pytest.fixture
def actor(fresh: tuple[str, Made]) -> Iterator[TestClient]:
    """A signed-in client on a store of the test's own."""
    with signed_in(fresh[0]) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 200
        yield client
