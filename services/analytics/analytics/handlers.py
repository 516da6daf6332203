"""One consumer group per sink, each bound to every event: a sink's backlog never holds another."""

from __future__ import annotations

from collections.abc import Sequence

from analytics.batcher import Batcher
from analytics.mapping import map_event
from rtmn_shared.events.catalogue import CATALOGUE
from rtmn_shared.events.consumer import Delivery, Handler

# A provider outage lasts minutes to hours, not seconds: wait longer between redeliveries
# before the dead-letter queue (about 40 minutes in all).
RETRY_DELAYS_MS = (5_000, 30_000, 120_000, 600_000, 1_800_000)


def forward(batcher: Batcher, prefetch: int) -> Handler:
    """Queue `analytics.<sink>`: each message is acknowledged once its batch was accepted."""

    async def apply(delivery: Delivery) -> None:
        event = map_event(delivery.event, delivery.data)
        if event is not None:
            await batcher.submit(event)

    return Handler(
        batcher.sink.name,
        events=tuple(CATALOGUE.values()),
        apply=apply,
        # Idempotent without an inbox: the event id travels as the sink's dedupe key.
        inbox=False,
        routing_keys=("#",),
        # Enough unacknowledged messages for a batch to fill while the previous one is sent.
        prefetch=prefetch,
        retry_delays_ms=RETRY_DELAYS_MS,
    )


def forwarding_handlers(batchers: Sequence[Batcher], prefetch: int) -> list[Handler]:
    return [forward(batcher, prefetch) for batcher in batchers]
