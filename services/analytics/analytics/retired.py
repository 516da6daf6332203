"""The per-sink queues of earlier versions, folded into `analytics.forward` when consumers start.

Up to 2026-12 each sink had its own consumer group (`analytics.mixpanel`, `analytics.ga4`, each
bound to every event). An upgraded broker still holds them: they are unbound so nothing new
arrives, and what waits in them (retry queues first, since those return to the main queue, then
the main queue, then the dead letters) moves to the new group's matching queue with the sink
named, so it reaches that sink only. Each emptied queue is deleted; with nothing left, this
finds nothing and costs three passive declares.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue

from analytics.handlers import RETRY_DELAYS_MS, SINKS_HEADER
from rtmn_shared.events import brokers
from rtmn_shared.events.consumer import Handler, copy_of
from rtmn_shared.events.publishers import Logins, login_of, relaying_logins
from rtmn_shared.events.topology import QueueNames, declare_consumer_queues, declare_exchange
from rtmn_shared.logs import redact_url
from rtmn_shared.resilience import Backoff
from rtmn_shared.suite import EXCHANGE

log = logging.getLogger(__name__)

RETIRED_SINK_QUEUES = ("mixpanel", "ga4")


async def fold_until_done(
    amqp_url: str, into: Handler, service: str = "analytics", logins: Logins | None = None
) -> None:
    """Folds once, waiting out a broker that is not there yet."""
    backoff = Backoff()
    while True:
        try:
            connection = await brokers.connect(amqp_url, timeout=5)
            try:
                await fold_retired_queues(connection, into, service, login_of(amqp_url), logins)
            finally:
                await connection.close()
            return
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as error:
            delay = backoff.next()
            log.warning(
                "could not fold the retired queues at %s (%s); again in %.1fs",
                redact_url(amqp_url),
                type(error).__name__,
                delay,
            )
            await asyncio.sleep(delay)


async def fold_retired_queues(
    connection: AbstractConnection,
    into_handler: Handler,
    service: str = "analytics",
    login: str | None = None,
    logins: Logins | None = None,
) -> int:
    """Moves every message of the retired queues into the forward group's; how many moved.

    The copies go out under this service's login and name their first-hand producer, as the
    consumer's own moves do (events/publishers.py)."""
    relaying = relaying_logins(logins or Logins(), login)
    into = QueueNames(f"{service}.{into_handler.name}")
    # Declared as the runner declares them (idempotent), so the moves have somewhere to go
    # whichever of the two starts first.
    channel = await connection.channel()
    exchange = await declare_exchange(channel)
    await declare_consumer_queues(
        channel, exchange, into, into_handler.keys(), into_handler.retry_delays_ms
    )
    await channel.close()
    moved = 0
    for sink in RETIRED_SINK_QUEUES:
        old = QueueNames(f"{service}.{sink}")
        pairs = [(old.retry(delay), into.main) for delay in RETRY_DELAYS_MS]
        pairs += [(old.main, into.main), (old.dlq, into.dlq)]
        for source, target in pairs:
            moved += await _fold(connection, source, target, sink, login, relaying)
    if moved:
        log.info("moved %d message(s) from the retired per-sink queues", moved)
    return moved


async def _fold(
    connection: AbstractConnection,
    source: str,
    target: str,
    sink: str,
    login: str | None,
    relaying: frozenset[str],
) -> int:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        queue = await _existing(channel, source)
        if queue is None:
            return 0
        await queue.unbind(EXCHANGE, "#")
        moved = 0
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            headers = {**(message.headers or {}), SINKS_HEADER: sink}
            copy = copy_of(message, headers, login=login, relaying=relaying)
            await channel.default_exchange.publish(copy, routing_key=target, mandatory=True)
            await message.ack()
            moved += 1
        await queue.delete(if_unused=False, if_empty=True)
        return moved
    finally:
        if not channel.is_closed:
            await channel.close()


async def _existing(channel: AbstractChannel, name: str) -> AbstractQueue | None:
    try:
        return await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelClosed:  # NOT_FOUND closes the channel: nothing to fold
        return None
