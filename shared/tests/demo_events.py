"""Helpers of the event-path tests: a `demo` schema's outbox, relay, recorders and consumers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from prometheus_client import REGISTRY

from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.publishers import AnyPublisher
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for

outbox = Outbox("rtmn/demo")
FAST = (100, 300)  # retry delays for tests, in ms


def payment(n: int = 0) -> PaymentSuccess:
    return PaymentSuccess(
        payment_id=f"pay_{n}_{uuid.uuid4().hex[:6]}",
        order_id=f"ord_{n}",
        order_number=f"R{n}",
        user_id="u1",
        merchant_id="m1",
        amount=49_900,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=f"pay_rzp_{n}",
        paid_at=datetime.now(UTC),
    )


def relay(pool: Pool, suite: Suite, **options: object) -> OutboxRelay:
    options.setdefault("poll_seconds", 0.1)  # these tests write without waking the relay
    options.setdefault("amqp_url", suite.amqp_url)
    return OutboxRelay(
        service="demo",
        pool=pool,
        connect_db=lambda: asyncpg.connect(
            suite.database_url, user="rtmn_demo", server_settings={"search_path": "demo"}
        ),
        **options,  # type: ignore[arg-type]
    )


async def record(delivery: Delivery, consumer: str) -> None:
    assert delivery.conn is not None
    await delivery.conn.execute(
        "INSERT INTO effects (consumer, event_id) VALUES ($1, $2)", consumer, delivery.event.id
    )


def recorder(name: str) -> Handler:
    async def apply(delivery: Delivery) -> None:
        await record(delivery, name)

    return Handler(name, (PaymentSuccess,), apply, retry_delays_ms=FAST)


async def effects(pool: Pool, consumer: str) -> list[uuid.UUID]:
    return [
        r["event_id"]
        for r in await pool.fetch("SELECT event_id FROM effects WHERE consumer = $1", consumer)
    ]


async def emit(pool: Pool, count: int = 1) -> list[uuid.UUID]:
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for n in range(count):
            ids.append((await outbox.add(conn, payment(n))).id)
    return ids


async def start(
    background: Background,
    pool: Pool,
    suite: Suite,
    *handlers: Handler,
    group: str,
    amqp_url: str | None = None,
) -> ConsumerRunner:
    runner = ConsumerRunner(
        service=group,
        pool=pool,
        amqp_url=amqp_url or suite.amqp_url,
        handlers=handlers,
        publishers=AnyPublisher(),  # the machinery under test, not who may publish
    )
    background(runner.run())
    await wait_for(runner.ready.is_set, message="consumers ready")
    return runner


def duplicates(queue: str) -> float:
    sample = REGISTRY.get_sample_value(
        "rtmn_events_consumed_total", {"queue": queue, "outcome": "duplicate"}
    )
    return sample or 0.0
