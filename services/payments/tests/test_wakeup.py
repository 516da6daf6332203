"""The relay hears of committed events from a NOTIFY sent after the commit, not inside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from payments.wakeup import RelayWakeup, Unit
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.waiting import wait_for

Api = Any  # the conftest fixture's class; conftest is not importable under importlib mode


@pytest.fixture
async def listener(suite: Suite, api: Api) -> AsyncIterator[list[str]]:
    heard: list[str] = []
    conn = await asyncpg.connect(suite.database_url, user="rtmn_payments")
    await conn.add_listener("rtmn_outbox_test_wakeup", lambda *args: heard.append(args[2]))
    yield heard
    await conn.close()


async def test_committed_transactions_wake_the_relay(
    suite: Suite, api: Api, listener: list[str]
) -> None:
    async def connect() -> Any:
        return await asyncpg.connect(suite.database_url, user="rtmn_payments")

    wakeup = RelayWakeup(connect, "rtmn_outbox_test_wakeup")
    task = asyncio.ensure_future(wakeup.run())
    unit = Unit(api.pool, wakeup.poke)
    try:
        for _ in range(20):
            async with unit.transaction() as conn:
                await conn.execute("SELECT 1")

        await wait_for(lambda: len(listener) >= 1, timeout=5, message="a NOTIFY")
        assert 1 <= len(listener) <= 20
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_failed_transaction_wakes_nobody(api: Api) -> None:
    pokes: list[None] = []
    unit = Unit(api.pool, lambda: pokes.append(None))

    with pytest.raises(RuntimeError):
        async with unit.transaction():
            raise RuntimeError("rolled back")

    assert pokes == []


async def test_the_outbox_trigger_is_gone_from_the_payments_schema(api: Api) -> None:
    triggers = await api.pool.fetchval(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'payments' AND c.relname = 'outbox' AND NOT t.tgisinternal"
    )
    assert triggers == 0
