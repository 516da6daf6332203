"""Domain events from RabbitMQ into Mixpanel's /import: batched forwarding beside one request
per event, in the same run.

    python bench/analytics_bench.py [--quick] [--latency-ms N]

Both paths consume the same events from a quorum queue bound to every type and ack each
message only after Mixpanel (a local contract fake, in its own thread) accepted it. The baseline
is what a per-event SDK call does (the Node seed's `mixpanel.track` per event): one POST each,
with a prefetch of 64 in flight. `--latency-ms` adds a provider round trip to every request, as
a real Mixpanel far away would (default 0: the local fake's own speed).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import aio_pika
import aiohttp
import uvloop
from _common import percentile, result_line, sample_payment, table

from analytics.batcher import Batcher
from analytics.handlers import build_handlers
from analytics.mapping import map_event
from analytics.providers.base import RetryPolicy
from analytics.providers.mixpanel import MixpanelSink
from rtmn_fakes.mixpanel import MixpanelFake
from rtmn_shared.events.catalogue import CATALOGUE
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.publishers import AnyPublisher
from rtmn_shared.events.topology import QueueNames, declare_consumer_queues, declare_exchange
from rtmn_shared.testing.infra import AMQP_BASE, rabbitmqctl
from rtmn_shared.testing.waiting import wait_for

BASELINE_PREFETCH = 64
TRICKLE = 100
TRICKLE_GAP = 0.01  # 100 events/s


def events(count: int) -> list[CloudEvent]:
    return [CloudEvent.of(sample_payment(n), source="rtmn/bench") for n in range(count)]


def per_event(sink: MixpanelSink) -> Handler:
    async def apply(delivery: Delivery) -> None:
        event = map_event(delivery.event, delivery.data)
        if event is not None:
            report = await sink.send([event])
            assert not report.failed

    return Handler(
        "mixpanel",
        events=tuple(CATALOGUE.values()),
        apply=apply,
        inbox=False,
        routing_keys=("#",),
        prefetch=BASELINE_PREFETCH,
    )


async def publish(exchange: aio_pika.abc.AbstractExchange, batch: list[CloudEvent]) -> None:
    for offset in range(0, len(batch), 500):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(e.to_json(), message_id=str(e.id)), routing_key=e.type
                )
                for e in batch[offset : offset + 500]
            )
        )


async def run(mode: str, amqp_url: str, fake: MixpanelFake, count: int) -> dict[str, Any]:
    """A backlog of `count` events drained into Mixpanel, then a trickle timed end to end."""
    fake.reset()
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    async with aiohttp.ClientSession() as session:
        sink = MixpanelSink(
            session,
            api_url=fake.url,
            authorization=aiohttp.encode_basic_auth(fake.api_secret),
            policy=RetryPolicy(),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        batcher = None
        if mode == "batched":
            batcher = Batcher(sink, max_events=2000, max_delay_seconds=1.0)
            batcher.start()
            [handler] = build_handlers([batcher], prefetch=4000)
        else:
            handler = per_event(sink)
        group = f"bench-analytics-{mode}-{uuid.uuid4().hex[:6]}"
        names = QueueNames(f"{group}.mixpanel")
        exchange = await declare_exchange(channel)
        await declare_consumer_queues(
            channel, exchange, names, handler.keys(), handler.retry_delays_ms
        )
        await publish(exchange, events(count))

        # Batching is measured here, not who may publish (bench/events.py runs the check).
        runner = ConsumerRunner(
            service=group,
            pool=None,
            amqp_url=amqp_url,
            handlers=[handler],
            publishers=AnyPublisher(),
        )
        started = time.perf_counter()
        consuming = asyncio.create_task(runner.run())
        await wait_for(lambda: len(fake.events) >= count, timeout=600, interval=0.005)
        drained = time.perf_counter() - started
        backlog_requests = len(fake.requests_to("/import"))

        # A trickle of events, each stamped as it leaves: how long one waits to reach Mixpanel.
        published: dict[str, float] = {}
        for event in events(TRICKLE):
            published[str(event.id)] = time.time()
            await publish(exchange, [event])
            await asyncio.sleep(TRICKLE_GAP)
        await wait_for(lambda: len(fake.events) >= count + TRICKLE, timeout=60, interval=0.005)

        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        if batcher is not None:
            await batcher.close()
        for name in (names.main, names.dlq, *map(names.retry, handler.retry_delays_ms)):
            await channel.queue_delete(name)
    await connection.close()
    latencies = [
        (request.received_at - published[record["properties"]["$insert_id"]]) * 1000
        for request in fake.requests_to("/import")
        for record in request.json
        if record["properties"]["$insert_id"] in published
    ]
    return {
        "rate": count / drained,
        "requests": backlog_requests,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


async def main(count: int, latency_ms: float) -> None:
    vhost = f"rtmn-bench-analytics-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    fake = MixpanelFake().start_in_thread()
    try:
        amqp_url = f"{AMQP_BASE}/{vhost}"
        results = {}
        for mode in ("per-event", "batched"):
            if latency_ms:
                fake.delay_next(10**9, latency_ms / 1000, path="/import")
            results[mode] = await run(mode, amqp_url, fake, count)
            fake.reset()
    finally:
        fake.stop()
        rabbitmqctl("delete_vhost", vhost)
    rows = [("path", "backlog events/s", "requests", "trickle p50 ms", "p99 ms")]
    for mode, r in results.items():
        rows.append(
            (mode, f"{r['rate']:.0f}", str(r["requests"]), f"{r['p50']:.0f}", f"{r['p99']:.0f}")
        )
    print(
        f"a backlog of {count} payment.success events drained from RabbitMQ into the Mixpanel "
        f"fake (+{latency_ms:g} ms a request); then {TRICKLE} at 100/s timed publish → Mixpanel"
    )
    print(table(rows))
    batched, baseline = results["batched"], results["per-event"]
    print(
        result_line(
            "analytics",
            "backlog events forwarded per second",
            batched["rate"],
            baseline["rate"],
            "events/s",
            p50_ms=batched["p50"],
            p99_ms=batched["p99"],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 events instead of 5,000")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvloop.run(main(1_000 if args.quick else 5_000, args.latency_ms))
