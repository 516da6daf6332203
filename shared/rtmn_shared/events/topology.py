"""The broker topology, declared idempotently by whoever starts first.

One durable topic exchange; unroutable events go to an alternate exchange instead of vanishing.
Per consumer group: a quorum queue, one delay queue per retry step, and a dead-letter queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from rtmn_shared.events.envelope import CONTENT_TYPE
from rtmn_shared.suite import EXCHANGE, UNROUTED_EXCHANGE, UNROUTED_QUEUE

# After this many broker redeliveries (a consumer crashing mid-message) the broker dead-letters.
DELIVERY_LIMIT = 20


async def declare_exchange(channel: AbstractChannel) -> AbstractExchange:
    unrouted = await channel.declare_exchange(
        UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(
        UNROUTED_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(unrouted)
    return await channel.declare_exchange(
        EXCHANGE,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )


@dataclass(frozen=True)
class QueueNames:
    main: str

    @property
    def dlq(self) -> str:
        return f"{self.main}.dlq"

    def retry(self, delay_ms: int) -> str:
        return f"{self.main}.retry.{delay_ms}ms"


def _dead_letter_to(queue: str) -> dict[str, Any]:
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_consumer_queues(
    channel: AbstractChannel,
    exchange: AbstractExchange,
    names: QueueNames,
    routing_keys: tuple[str, ...],
    retry_delays_ms: tuple[int, ...],
) -> AbstractQueue:
    await channel.declare_queue(names.dlq, durable=True, arguments={"x-queue-type": "quorum"})
    for delay in retry_delays_ms:
        # A message waits out its TTL here, then dead-letters straight back to this group only.
        await channel.declare_queue(
            names.retry(delay),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay,
                **_dead_letter_to(names.main),
            },
        )
    queue = await channel.declare_queue(
        names.main,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            **_dead_letter_to(names.dlq),
        },
    )
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    return queue


def event_message(
    body: bytes, *, message_id: str, type: str | None = None, user_id: str | None = None
) -> aio_pika.Message:
    """How an event travels: persistent CloudEvents JSON under its event id, which consumers'
    logs and the DLQ tools name it by, stamped with the publisher's login, which the broker
    checks (events/publishers.py)."""
    return aio_pika.Message(
        body,
        message_id=message_id,
        type=type,
        user_id=user_id,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
