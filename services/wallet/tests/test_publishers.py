"""Only payments can make the wallet mint coins: what another service's broker login can do with
a `payment.success` (docs/security.md, "one broker login per service")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from prometheus_client import REGISTRY
from wallet_events import payment, uid

from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.publishers import PRODUCER_HEADER
from rtmn_shared.events.topology import event_message
from rtmn_shared.suite import EXCHANGE
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for
from wallet.app import SERVICE

QUEUE = "wallet.credit-cashback"


@pytest.fixture(scope="module")
async def svc(suite: Suite) -> AsyncIterator[RunningService]:
    async with running(SERVICE) as service:
        yield service


async def coins_of(svc: RunningService, user: str) -> list[int]:
    rows = await svc.pool.fetch("SELECT coins FROM entries WHERE user_id = $1", user)
    return [r["coins"] for r in rows]


def refused() -> float:
    labels = {"queue": QUEUE, "type": "payment.success"}
    return REGISTRY.get_sample_value("rtmn_events_refused_total", labels) or 0.0


async def dead_lettered(suite: Suite, event: CloudEvent) -> dict[str, Any] | None:
    listed = await dead_letters(
        suite.amqp_url_as("ops"), QUEUE, 1000, replay=False, logins=suite.logins
    )
    return next((m for m in listed if m["message_id"] == str(event.id)), None)


@pytest.mark.parametrize(
    ("login", "as_user", "queue", "refusal"),
    [
        # Analytics produces nothing: it may not publish to the events exchange at all.
        ("analytics", "analytics", None, "ACCESS_REFUSED - access to exchange"),
        # Media may, but only its own types (topic permissions)...
        ("media", "media", None, "ACCESS_REFUSED - access to topic 'payment.success'"),
        # ...and analytics, which may reach the wallet's queue through the default exchange,
        # cannot do it in payments' name (validated user-id).
        ("analytics", "payments", QUEUE, "PRECONDITION_FAILED - user_id property set to"),
    ],
    ids=["analytics", "media", "analytics-spoofing-payments"],
)
async def test_the_broker_refuses_a_payment_success_from_another_services_login(
    svc: RunningService, suite: Suite, login: str, as_user: str, queue: str | None, refusal: str
) -> None:
    user = uid("u")
    event = CloudEvent.of(payment(user, 100_000), source="rtmn/payments")
    connection = await aio_pika.connect(suite.amqp_url_as(login))
    try:
        channel = await connection.channel(publisher_confirms=True)
        message = event_message(
            event.to_json(),
            message_id=str(event.id),
            type=event.type,
            user_id=suite.logins.of(as_user),
        )
        with pytest.raises(aio_pika.exceptions.ChannelClosed) as closed:
            if queue is None:
                exchange = await channel.get_exchange(EXCHANGE, ensure=False)
                await exchange.publish(message, routing_key=event.type)
            else:
                await channel.default_exchange.publish(message, routing_key=queue)
        assert refusal in str(closed.value)
    finally:
        await connection.close()
    assert await coins_of(svc, user) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {PRODUCER_HEADER: "payments"}],
    ids=["plain", "claiming-to-relay-payments"],
)
async def test_a_payment_success_put_in_the_wallet_queue_by_analytics_is_dead_lettered(
    svc: RunningService, suite: Suite, producers: Producers, headers: dict[str, str]
) -> None:
    # Analytics may write to the default exchange (its own retries need it), so it can reach
    # the wallet's queue; the user_id the broker vouches for still names analytics.
    headers = {k: suite.logins.of(v) for k, v in headers.items()}
    user = uid("u")
    event = CloudEvent.of(payment(user, 100_000), source="rtmn/payments")
    before = refused()
    channel = await producers.channel("analytics")
    message = event_message(
        event.to_json(),
        message_id=str(event.id),
        type=event.type,
        user_id=suite.logins.of("analytics"),
    )
    message.headers = headers
    await channel.default_exchange.publish(message, routing_key=QUEUE)

    found = await wait_for(lambda: dead_lettered(suite, event), message="the refused event")
    assert "not one of its producers" in found["last_error"]
    assert found["producer"] == suite.logins.of("analytics")
    assert refused() == before + 1
    assert await coins_of(svc, user) == []

    # An operator's replay cannot launder it: it names analytics and is refused again.
    await dead_letters(suite.amqp_url_as("ops"), QUEUE, 1000, replay=True, logins=suite.logins)
    await wait_for(lambda: refused() >= before + 2, message="the replay refused again")
    assert await coins_of(svc, user) == []


async def test_the_same_payment_success_from_payments_mints_coins(
    svc: RunningService, producers: Producers
) -> None:
    user = uid("u")
    await producers.publish(CloudEvent.of(payment(user, 100_000), source="rtmn/payments"))
    assert await wait_for(lambda: coins_of(svc, user), message="the credit") == [50]


async def test_another_services_login_cannot_consume_or_read_the_wallets_queues(
    svc: RunningService, suite: Suite
) -> None:
    for name in ("analytics", "media"):
        connection = await aio_pika.connect(suite.amqp_url_as(name))
        try:
            for queue in (QUEUE, f"{QUEUE}.dlq"):
                channel = await connection.channel()
                with pytest.raises(aio_pika.exceptions.ChannelClosed) as closed:
                    queue_ = await channel.get_queue(queue, ensure=False)
                    await queue_.get(fail=False)
                assert "ACCESS_REFUSED" in str(closed.value), (name, queue)
        finally:
            await connection.close()
