"""One consumer group, `analytics.forward`, fanned out to every sink in this process.

Each event is one delivery here, whatever the number of sinks. Their outcomes stay apart: the
message is acknowledged once every sink took the event, and a sink that stayed unavailable is
named on the retried copy (SINKS_HEADER), so only that sink gets the event again and one that
already took it never counts it twice. A sink known to be down is not waited for on every new
event (Batcher.down): those go straight to their first retry, and the other sinks keep pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from analytics.batcher import Batcher
from analytics.mapping import MAPPINGS, map_event
from rtmn_shared.events.catalogue import CATALOGUE
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.envelope import EventData
from rtmn_shared.events.outcomes import Retry

log = logging.getLogger(__name__)

QUEUE = "forward"
# The sinks still to send a retried event to, comma-separated; absent: every sink.
SINKS_HEADER = "x-rtmn-sinks"
# A provider outage lasts minutes to hours, not seconds: wait longer between redeliveries
# before the dead-letter queue (about 40 minutes in all).
RETRY_DELAYS_MS = (5_000, 30_000, 120_000, 600_000, 1_800_000)


def build_handlers(batchers: Sequence[Batcher], prefetch: int) -> list[Handler[EventData]]:
    by_name = {batcher.sink.name: batcher for batcher in batchers}

    async def apply(delivery: Delivery[EventData]) -> None:
        event = map_event(delivery.event, delivery.data)
        if event is None:
            return
        wanted = _still_to_send(delivery, by_name)
        # A first delivery skips a sink known to be down; a redelivered one always tries it,
        # so each retry is a real attempt and the redeliveries are what find it back up.
        down = [name for name in wanted if delivery.attempt == 1 and by_name[name].down()]
        trying = [name for name in wanted if name not in down]
        outcomes = await asyncio.gather(
            *(by_name[name].submit(event) for name in trying), return_exceptions=True
        )
        failed = down + [name for name, o in zip(trying, outcomes, strict=True) if o is not None]
        for outcome in outcomes:
            if outcome is not None and not isinstance(outcome, Retry):
                log.warning("a sink failed unexpectedly", exc_info=outcome)
        if failed:
            raise Retry(
                f"{', '.join(failed)} unavailable", headers={SINKS_HEADER: ",".join(failed)}
            )

    forward = Handler(
        QUEUE,
        events=tuple(CATALOGUE.values()),
        apply=apply,
        # Idempotent without an inbox: the event id travels as the sinks' dedupe key.
        inbox=False,
        # Only the types that are forwarded: commands and unmapped types never arrive here.
        routing_keys=tuple(MAPPINGS),
        # Enough unacknowledged messages for a batch to fill while the previous one is sent.
        prefetch=prefetch,
        retry_delays_ms=RETRY_DELAYS_MS,
    )
    return [forward]


def _still_to_send(delivery: Delivery, by_name: dict[str, Batcher]) -> list[str]:
    named = delivery.headers.get(SINKS_HEADER)
    if not isinstance(named, str):
        return list(by_name)
    # A sink named on an old copy but no longer configured has nothing left to do.
    return [name for name in named.split(",") if name in by_name]
