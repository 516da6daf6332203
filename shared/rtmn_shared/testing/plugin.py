"""The pytest plugin every test suite of the project loads (see pyproject's addopts)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from rtmn_shared.db import Pool, keep_session
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import ADMIN_DSN, Suite
from rtmn_shared.testing.producers import Producers


@pytest.fixture(scope="session")
async def suite() -> AsyncIterator[Suite]:
    """This run's database (every service's role and schema) and vhost, with env to reach them."""
    run = Suite()
    await run.create()
    saved = {k: os.environ.get(k) for k in run.environ()}
    os.environ.update(run.environ())
    try:
        yield run
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        await run.destroy()


@pytest.fixture(scope="session")
async def producers(suite: Suite) -> AsyncIterator[Producers]:
    """Publishes events as their producers' relays do: each under its producer's login."""
    publishing = Producers(suite)
    yield publishing
    await publishing.close()


@pytest.fixture(scope="session")
async def admin(suite: Suite) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A superuser connection to this run's database, for inspecting any schema."""
    conn = await asyncpg.connect(ADMIN_DSN, database=suite.database)
    yield conn
    await conn.close()


Migrator = Callable[[str, Path], Awaitable[Pool]]


@pytest.fixture(scope="session")
async def service_pool(suite: Suite) -> AsyncIterator[Migrator]:
    """`await service_pool("wallet", MIGRATIONS)`: migrates that schema once (as its owner),
    returns a pool of its runtime role."""
    pools: dict[str, Pool] = {}

    async def get(name: str, migrations: Path) -> Pool:
        if name not in pools:
            info = SERVICES[name]
            conn = await asyncpg.connect(suite.database_url, user=info.owner)
            try:
                await migrate(conn, info.schema, discover(migrations))
            finally:
                await conn.close()
            pool = await asyncpg.create_pool(
                suite.database_url,
                user=info.role,
                min_size=1,
                max_size=10,
                server_settings={"search_path": info.schema},
                reset=keep_session,
            )
            assert pool is not None
            pools[name] = pool
        return pools[name]

    yield get
    for pool in pools.values():
        await pool.close()


@pytest.fixture
async def redis(suite: Suite) -> AsyncIterator[Redis]:
    client = Redis.from_url(suite.redis_url)
    yield client
    await client.aclose()


Background = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
STOP_ATTEMPTS, STOP_SECONDS = 3, 10.0


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    """Runs coroutines (relays, consumers, fakes) for one test and cancels them after it."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task

    yield start
    pending: set[asyncio.Task[Any]] = set(tasks)
    # A task whose shutdown awaits what never ends (a close on a connection the broker dropped)
    # is cancelled again instead of hanging the run; one that outlives that fails the test.
    for _ in range(STOP_ATTEMPTS):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=STOP_SECONDS)
        if not pending:
            break
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a background task's error is not the test's verdict
    assert not pending, f"background tasks still running after {STOP_ATTEMPTS} cancels: {pending}"


ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def http() -> AsyncIterator[ClientFactory]:
    """`client = await http(app)`: the app served on a real local port for one test."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def serve(app: web.Application) -> TestClient[web.Request, web.Application]:
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield serve
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[3]
