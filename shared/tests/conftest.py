from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from rtmn_shared.db import Pool
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import Suite, provision_for_tests

DEMO = ServiceInfo("demo", 0)
DEMO_MIGRATIONS = Path(__file__).parent / "demo_migrations"


@pytest.fixture(scope="session")
async def demo_pool(suite: Suite) -> AsyncIterator[Pool]:
    """A stand-in service schema, `demo`, with the shared outbox and inbox and one table."""
    await provision_for_tests(suite.database, [DEMO])
    conn = await asyncpg.connect(suite.database_url, user=DEMO.owner)
    await migrate(conn, DEMO.schema, discover(DEMO_MIGRATIONS))
    await conn.close()
    pool = await asyncpg.create_pool(
        suite.database_url, user=DEMO.role, server_settings={"search_path": DEMO.schema}
    )
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def clean_demo(demo_pool: Pool) -> Pool:
    # DELETE, not TRUNCATE: the runtime role writes rows and nothing more.
    await demo_pool.execute("DELETE FROM outbox; DELETE FROM inbox; DELETE FROM effects")
    return demo_pool
