"""The whole wallet in-process: events in through RabbitMQ, events out through the outbox relay,
and the caller's balance and ledger over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from prometheus_client import REGISTRY
from wallet_events import payment, placed, refund, uid

from rtmn_shared.events.catalogue import UserRegistered
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.suite import EXCHANGE
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for
from wallet.app import SERVICE

Deliver = Callable[..., Awaitable[bool]]


@pytest.fixture(scope="module")
async def svc(suite: Suite) -> AsyncIterator[RunningService]:
    async with running(SERVICE) as service:
        yield service


@pytest.fixture(scope="module")
async def channel(suite: Suite, svc: RunningService) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(suite.amqp_url)
    yield await connection.channel(publisher_confirms=True)
    await connection.close()


@pytest.fixture(scope="module")
async def wallet_events(channel: AbstractChannel) -> AbstractQueue:
    """What the wallet publishes, as a downstream consumer would see it."""
    exchange = await channel.get_exchange(EXCHANGE)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="wallet.*")
    return queue


async def publish(producers: Producers, data: EventData, times: int = 1) -> None:
    """Publishes one event `times` times with the same id, as a broker redelivery would look."""
    await producers.publish(CloudEvent.of(data, source="rtmn/test"), times=times)


def consumed(queue: str, outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "rtmn_events_consumed_total", {"queue": queue, "outcome": outcome}
    )
    return sample or 0.0


async def coins_of(svc: RunningService, user: str) -> list[int]:
    rows = await svc.pool.fetch("SELECT coins FROM entries WHERE user_id = $1 ORDER BY seq", user)
    return [r["coins"] for r in rows]


async def drain(queue: AbstractQueue, user: str, count: int) -> list[dict[str, Any]]:
    """The wallet's published events for `user`, in order, once `count` of them have arrived."""
    seen: list[dict[str, Any]] = []

    async def more() -> bool:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            event = orjson.loads(message.body)
            if event["subject"] == user:
                seen.append(event)
        return len(seen) >= count

    await wait_for(more, message=f"{count} wallet events for {user}")
    return seen


async def test_credit_partial_and_final_reversals_each_delivered_twice_applied_once(
    svc: RunningService, producers: Producers, wallet_events: AbstractQueue, suite: Suite
) -> None:
    user = uid("u")
    paid = payment(user, 200_000)  # ₹2000 → 100 coins
    steps: list[tuple[EventData, str, list[int]]] = [
        (paid, "wallet.credit-cashback", [100]),
        (refund(paid, 50_000, 50_000), "wallet.reverse-cashback", [100, -25]),
        (refund(paid, 30_000, 80_000), "wallet.reverse-cashback", [100, -25, -15]),
        (refund(paid, 120_000, 200_000), "wallet.reverse-cashback", [100, -25, -15, -60]),
    ]
    for data, queue, expected in steps:
        duplicates = consumed(queue, "duplicate")
        await publish(producers, data, times=2)
        await wait_for(
            lambda q=queue, d=duplicates: consumed(q, "duplicate") > d,
            message=f"the redelivery on {queue}",
        )
        assert await coins_of(svc, user) == expected

    published = await drain(wallet_events, user, 4)
    assert [(e["type"], e["data"]["coins"], e["data"]["balance_after"]) for e in published] == [
        ("wallet.credited", 100, 100),
        ("wallet.debited", 25, 75),
        ("wallet.debited", 15, 60),
        ("wallet.debited", 60, 0),
    ]
    assert published[0]["data"]["reference"] == paid.payment_id

    response = await svc.client.get("/api/wallet/balance", headers=suite.bearer(user))
    assert response.status == 200
    assert (await response.json())["coins"] == 0


async def test_the_tier_from_user_registered_raises_the_cashback(
    svc: RunningService, producers: Producers
) -> None:
    user = uid("u")
    await publish(producers, UserRegistered(user_id=user, tier="platinum", email="a@example.com"))
    await wait_for(
        lambda: svc.pool.fetchval("SELECT tier FROM users WHERE user_id = $1", user),
        message="the user read model",
    )
    await publish(producers, payment(user, 49_900))
    await wait_for(lambda: coins_of(svc, user), message="the credit")
    assert await coins_of(svc, user) == [49]  # ₹499 × 5 % × 2


async def test_an_order_placed_is_quoted_once_the_coins_its_payment_then_earns(
    svc: RunningService, producers: Producers, wallet_events: AbstractQueue
) -> None:
    user = uid("u")
    await publish(producers, UserRegistered(user_id=user, tier="silver"))
    await wait_for(
        lambda: svc.pool.fetchval("SELECT tier FROM users WHERE user_id = $1", user),
        message="the user read model",
    )
    paid = payment(user, 49_900)  # ₹499 × 5 % × 1.25 → 31 coins
    duplicates = consumed("wallet.quote-cashback", "duplicate")
    await publish(producers, placed(paid), times=2)
    await wait_for(
        lambda: consumed("wallet.quote-cashback", "duplicate") > duplicates,
        message="the redelivery of order.placed",
    )
    [quote] = await drain(wallet_events, paid.order_id, 1)

    await publish(producers, paid)
    [credit] = await drain(wallet_events, user, 1)
    assert quote["type"] == "wallet.cashback_quoted"
    assert quote["data"]["order_id"] == paid.order_id
    assert quote["data"]["coins"] == credit["data"]["coins"] == 31
    assert (
        await svc.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'wallet.cashback_quoted' AND subject = $1",
            paid.order_id,
        )
        == 1
    )


async def test_the_ledger_pages_newest_first_with_an_opaque_cursor(
    svc: RunningService, suite: Suite, deliver: Deliver
) -> None:
    user = uid("u")
    for n in range(5):
        await deliver(payment(user, 2_000 * (n + 1)))  # 1..5 coins
    headers = suite.bearer(user)
    pages, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await svc.client.get("/api/wallet/ledger", headers=headers, params=params)
        assert response.status == 200
        body = await response.json()
        pages.append([e["coins"] for e in body["entries"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [[5, 4], [3, 2], [1]]
    balance = await (await svc.client.get("/api/wallet/balance", headers=headers)).json()
    assert balance["coins"] == 15

    # Another caller sees only their own (empty) wallet.
    other = suite.bearer(uid("u"))
    assert (await (await svc.client.get("/api/wallet/ledger", headers=other)).json()) == {
        "entries": [],
        "next_cursor": None,
    }
    assert (await (await svc.client.get("/api/wallet/balance", headers=other)).json())["coins"] == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/wallet/ledger?cursor=not-a-cursor", 400),
        ("/api/wallet/ledger?limit=0", 400),
        ("/api/wallet/ledger?limit=101", 400),
    ],
)
async def test_bad_queries_are_problems(
    svc: RunningService, suite: Suite, path: str, status: int
) -> None:
    response = await svc.client.get(path, headers=suite.bearer(uid("u")))
    assert response.status == status
    assert response.content_type == "application/problem+json"


async def test_the_wallet_needs_a_token(svc: RunningService) -> None:
    for path in ("/api/wallet/balance", "/api/wallet/ledger"):
        response = await svc.client.get(path)
        assert response.status == 401


async def test_readiness_and_the_generated_openapi(svc: RunningService) -> None:
    ready = await svc.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"database": "ok", "broker": "ok"}
    spec = await (await svc.client.get("/openapi.json")).json()
    assert {"/api/wallet/balance", "/api/wallet/ledger"} <= set(spec["paths"])


async def test_a_refund_published_before_its_payment_is_settled_by_the_credit(
    svc: RunningService, producers: Producers
) -> None:
    user = uid("u")
    paid = payment(user, 200_000)
    await publish(producers, refund(paid, 200_000, 200_000))
    await wait_for(
        lambda: svc.pool.fetchval(
            "SELECT true FROM refunds WHERE payment_id = $1", paid.payment_id
        ),
        message="the refund recorded as pending",
    )
    await publish(producers, paid)
    await wait_for(lambda: coins_of(svc, user), message="the credit")
    assert await coins_of(svc, user) == [100, -100]


async def test_an_inconsistent_refund_is_dead_lettered(
    svc: RunningService, channel: AbstractChannel, producers: Producers
) -> None:
    dlq = "wallet.reverse-cashback.dlq"

    async def waiting() -> int:
        declared = await channel.declare_queue(dlq, passive=True)
        return declared.declaration_result.message_count or 0

    before = await waiting()
    paid = payment(uid("u"), 200_000)
    await publish(producers, refund(paid, 150_000, 100_000))  # total below its own amount
    await wait_for(lambda: _more(waiting, before), message="the refund in the DLQ")
    assert (
        await svc.pool.fetchval(
            "SELECT count(*) FROM refunds WHERE payment_id = $1", paid.payment_id
        )
        == 0
    )


async def _more(count: Callable[[], Awaitable[int]], than: int) -> bool:
    return await count() > than
