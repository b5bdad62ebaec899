"""The dashboard on each kind of store: SQLite (the other tests), ``memory://`` shared within
the process (``test_pages``), and PostgreSQL here — a real server (``tests/_postgres.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._ui import csrf_of

from ._support import Made, populate_url
from .conftest import TOKEN, portal, signed_in

asyncpg = pytest.importorskip("asyncpg")


@pytest.fixture
def postgres_store(postgres_server: str) -> Iterator[str]:
    """A database of its own on the test server, as a store URL."""
    name = f"ui_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    anyio.run(admin, f'CREATE DATABASE "{name}"', backend="asyncio")
    try:
        yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        anyio.run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', backend="asyncio")


def test_the_dashboard_on_postgresql(postgres_store: str) -> None:
    made: Made = populate_url(postgres_store)
    with signed_in(postgres_store) as client:
        client.get(f"/?token={TOKEN}")
        page = client.get("/").text
        for name in ("ui-numbers", "ui-flaky", "ui-nightly", "ui-live"):
            assert f'data-job="{name}"' in page
        assert "flaky got 42" in client.get(f"/runs/{made.flaky}").text
        assert 'class="dag"' in client.get("/jobs/ui-numbers").text
        answer = client.post(
            f"/actions/abort/{made.active}", data={"csrf": csrf_of(TOKEN)}, follow_redirects=True
        )
        assert answer.status_code == 200
        assert 'data-state-of="run">Stopped<' in answer.text

        async def stops() -> list[str]:
            async with AsyncRuns(postgres_store) as runs:
                history = await runs.history(made.active)
                return [r.event.by for r in history if isinstance(r.event, ev.StopRequested)]

        assert portal(client).call(stops) == ["ui"]
