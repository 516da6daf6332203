"""The delivery log on the real database, with in-test senders standing in for providers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest
from notify_testkit import add_devices, unique

from notify.delivery import Deliveries
from notify.providers import PermanentSendError, PushMessage, TokenResult, TransientSendError
from notify.providers.sandbox import SandboxEmailSender
from notify.store import Consent, DeliveryKey
from rtmn_shared.db import Pool
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.outcomes import Retry
from rtmn_shared.testing.infra import PG_HOST, Suite, password_of
from rtmn_shared.testing.outage import outage_in_front_of
from rtmn_shared.testing.plugin import Migrator
from rtmn_shared.testing.waiting import wait_for

MIGRATIONS = Path(__file__).parents[1] / "migrations"
MESSAGE = PushMessage(title="t", body="b", data={"type": "test"})


class ScriptedPush:
    """A PushSender whose next answers the test decides; it can also hold a send open."""

    name = "scripted"
    mode = "sandbox"

    def __init__(self, *failures: Exception, hold: asyncio.Event | None = None) -> None:
        self.failures = list(failures)
        self.hold = hold
        self.calls: list[list[str]] = []

    async def send(self, message: PushMessage, tokens: Sequence[str]) -> list[TokenResult]:
        self.calls.append(list(tokens))
        if self.hold is not None:
            await self.hold.wait()
        if self.failures:
            raise self.failures.pop(0)
        return [TokenResult(t, "sent", message_id=f"m-{t}") for t in tokens]


@pytest.fixture
async def pool(service_pool: Migrator) -> Pool:
    return await service_pool("notify", MIGRATIONS)


def deliveries(pool: Pool, push: ScriptedPush) -> Deliveries:
    return Deliveries(
        pool, email=SandboxEmailSender(), push=push, outbox=Outbox("rtmn/notify"), lease_seconds=60
    )


def key(user_id: str) -> DeliveryKey:
    return DeliveryKey(f"test:{uuid.uuid4().hex}", uuid.uuid4(), "push", user_id, "test")


async def row(pool: Pool, k: DeliveryKey) -> dict[str, object]:
    found = await pool.fetchrow("SELECT * FROM deliveries WHERE source = $1", k.source)
    assert found is not None
    return dict(found)


async def test_an_unexpected_error_gives_the_claim_back_and_propagates(pool: Pool) -> None:
    user_id = unique("user")
    await add_devices(pool, user_id, unique("tok"))
    push = ScriptedPush(RuntimeError("sdk bug"))
    k = key(user_id)

    with pytest.raises(RuntimeError, match="sdk bug"):
        await deliveries(pool, push).push(k, MESSAGE)
    first = await row(pool, k)
    await deliveries(pool, push).push(k, MESSAGE)  # the next attempt need not wait the lease
    done = await row(pool, k)

    assert (first["status"], first["lease_until"], first["last_error"]) == (
        "queued",
        None,
        "RuntimeError: sdk bug",
    )
    assert (done["status"], done["attempts"]) == ("sent", 2)


async def test_a_refused_message_is_failed_for_good(pool: Pool) -> None:
    user_id = unique("user")
    await add_devices(pool, user_id, unique("tok"))
    push = ScriptedPush(PermanentSendError("fcm refused the message: bad image"))
    k = key(user_id)

    await deliveries(pool, push).push(k, MESSAGE)
    await deliveries(pool, push).push(k, MESSAGE)

    assert len(push.calls) == 1
    failed = await row(pool, k)
    assert (failed["status"], failed["last_error"]) == (
        "failed",
        "fcm refused the message: bad image",
    )


async def test_a_delivery_in_flight_elsewhere_is_retried_not_sent_twice(pool: Pool) -> None:
    user_id = unique("user")
    await add_devices(pool, user_id, unique("tok"))
    hold = asyncio.Event()
    push = ScriptedPush(hold=hold)
    k = key(user_id)

    first = asyncio.ensure_future(deliveries(pool, push).push(k, MESSAGE))
    await wait_for(lambda: push.calls, message="the first send to start")
    with pytest.raises(Retry, match="being sent by another worker"):
        await deliveries(pool, push).push(k, MESSAGE)
    hold.set()
    await first

    assert len(push.calls) == 1
    assert (await row(pool, k))["status"] == "sent"


async def test_a_send_accepted_while_the_database_is_away_is_recorded_once_it_is_back(
    pool: Pool, suite: Suite, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = unique("user")
    await add_devices(pool, user_id, unique("tok"))
    hold = asyncio.Event()
    push = ScriptedPush(hold=hold)
    k = key(user_id)
    host, port = PG_HOST.rsplit(":", 1)
    async with outage_in_front_of(host, int(port)) as outage:
        through = await asyncpg.create_pool(
            host="127.0.0.1",
            port=outage.port,
            database=suite.database,
            user="rtmn_notify",
            password=password_of("rtmn_notify"),  # the proxy's port is in no pgpass line
            server_settings={"search_path": "notify"},
            min_size=1,
            max_size=2,
        )
        try:
            sending = asyncio.ensure_future(deliveries(through, push).push(k, MESSAGE))
            await wait_for(lambda: push.calls, message="the provider call under way")
            outage.cut()
            hold.set()  # the provider accepts while the database is away
            await wait_for(
                lambda: "database unavailable" in caplog.text,
                message="recording the accepted send fail, and wait",
            )
            outage.restore()
            await asyncio.wait_for(sending, 30)
        finally:
            await through.close()

    sent = await row(pool, k)
    assert (sent["status"], sent["lease_until"], len(push.calls)) == ("sent", None, 1)
    events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'notification.sent' "
        "AND payload->'data'->>'notification_id' = $1",
        str(sent["id"]),
    )
    assert events == 1


async def test_a_preference_turned_off_between_two_tries_suppresses_the_retry(pool: Pool) -> None:
    user_id = unique("user")
    await add_devices(pool, user_id, unique("tok"))
    push = ScriptedPush(TransientSendError("fcm answered 503"))
    k = key(user_id)
    wallet = Consent("wallet")

    with pytest.raises(Retry):
        await deliveries(pool, push).push(k, MESSAGE, wallet)
    await pool.execute(
        "INSERT INTO preferences (user_id, category, channel, enabled, source) "
        "VALUES ($1, 'wallet', 'push', false, 'user')",
        user_id,
    )
    await deliveries(pool, push).push(k, MESSAGE, wallet)

    suppressed = await row(pool, k)
    assert (suppressed["status"], suppressed["last_error"], suppressed["attempts"]) == (
        "suppressed",
        "preference: wallet push is off",
        1,
    )
    assert len(push.calls) == 1
