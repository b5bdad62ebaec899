"""The PostgreSQL test server itself (issue 14: a real server, started by the project's own
files). The PostgreSQL store's conformance tests will use the same fixture."""

from __future__ import annotations

import os
import uuid

import pytest

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg runs on asyncio only


async def test_a_fresh_database_per_test_on_a_real_server(postgres_server: str) -> None:
    admin = await asyncpg.connect(postgres_server)
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        version = await admin.fetchval("SHOW server_version_num")
        assert int(version) >= 130000
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(postgres_server.rsplit("/", 1)[0] + f"/{name}")
        try:
            await conn.execute("CREATE TABLE t (x int)")
            await conn.execute("INSERT INTO t VALUES (1), (2)")
            assert await conn.fetchval("SELECT sum(x) FROM t") == 3
            if not os.environ.get("LIFECYCLE_TEST_POSTGRES"):
                assert await conn.fetchval("SHOW fsync") == "off"  # our throwaway cluster
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
