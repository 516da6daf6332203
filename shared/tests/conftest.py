from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from rtmn_shared.db import Pool
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.provision import provision
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import ADMIN_DSN, Suite

DEMO = ServiceInfo("demo", 0)
DEMO_MIGRATIONS = Path(__file__).parent / "demo_migrations"


@pytest.fixture(scope="session")
async def demo_pool(suite: Suite) -> AsyncIterator[Pool]:
    """A stand-in service schema, `demo`, with the shared outbox and inbox and one table."""
    await provision(ADMIN_DSN, suite.database, [DEMO])
    conn = await asyncpg.connect(suite.database_url, user=DEMO.role)
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
    await demo_pool.execute("TRUNCATE outbox, inbox, effects")
    return demo_pool
