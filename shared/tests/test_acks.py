"""Acks sent together (events/acks.py): every settled delivery is acknowledged exactly once,
whether it settled in order or past a delivery still in work."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

import aio_pika

from demo_events import FAST, payment
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.publishers import AnyPublisher
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


async def test_deliveries_settled_past_a_slow_one_are_acked_and_the_slow_one_is_not(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    slow, rest = _event(0), [_event(n) for n in range(1, 21)]
    released = asyncio.Event()
    handled: Counter[uuid.UUID] = Counter()

    async def apply(delivery: Delivery) -> None:
        handled[delivery.event.id] += 1
        if delivery.event.id == slow.id:
            await released.wait()

    handler = Handler("acks", (PaymentSuccess,), apply, inbox=False, retry_delays_ms=FAST)

    async def consume() -> asyncio.Task[None]:
        runner = ConsumerRunner(
            service="acks",
            pool=None,
            amqp_url=suite.amqp_url,
            handlers=[handler],
            publishers=AnyPublisher(),
        )
        task = background(runner.run())
        await wait_for(runner.ready.is_set, message="consumers ready")
        return task

    first = await consume()
    await publish(suite, "acks.acks", [slow, *rest])
    # Twenty settle while the first is still in work: they cannot ride on a `multiple` ack.
    await wait_for(lambda: all(handled[e.id] for e in rest), message="the twenty behind it")
    # The consumer goes away with the slow one unfinished: it must come back, the rest not.
    first.cancel()
    released.set()
    with contextlib.suppress(asyncio.CancelledError):
        await first

    await consume()
    await wait_for(lambda: handled[slow.id] == 2, message="the slow one delivered again")
    marker = _event(99)
    await publish(suite, "acks.acks", [marker])
    await wait_for(lambda: handled[marker.id], message="the marker, after anything redelivered")
    assert [handled[e.id] for e in rest] == [1] * 20


async def publish(suite: Suite, queue: str, events: list[CloudEvent]) -> None:
    connection = await aio_pika.connect(suite.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        for event in events:
            message = aio_pika.Message(event.model_dump_json().encode(), message_id=str(event.id))
            await channel.default_exchange.publish(message, routing_key=queue)
    finally:
        await connection.close()


def _event(n: int) -> CloudEvent:
    return CloudEvent.of(payment(n), source="rtmn/demo")
