"""Outbox → relay → consumer throughput and end-to-end latency, beside raw aio-pika.

    python bench/events.py [--quick]

Baseline (same broker, same run): pipelined confirmed publishes to a quorum queue and a
manual-ack consumer with the same prefetch. The suite path adds PostgreSQL on both sides: the
outbox row, the relay's mark, the consumer's inbox row and its effect, each in a transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile, result_line, table

from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.events.wakeup import RelayWakeup, UnitOfWork
from rtmn_shared.migrations import Migration, discover, migrate
from rtmn_shared.provision import provision
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import ADMIN_DSN, Suite

BENCH = ServiceInfo("bench", 0)
PREFETCH = 200


def event(n: int) -> PaymentSuccess:
    return PaymentSuccess(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        order_number=f"R{n}",
        user_id=f"u{n % 97}",
        merchant_id="m1",
        amount=49_900,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=f"rzp_{n}",
        paid_at=datetime.now(UTC),
    )


async def baseline(amqp_url: str, count: int) -> float:
    """Raw aio-pika: pipelined confirmed publish + manual-ack consume; messages/s end to end."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(
        f"bench.raw.{uuid.uuid4().hex[:6]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=PREFETCH)
    consumer_queue = await consume_channel.get_queue(queue.name)
    done = asyncio.Event()
    received = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received == count:
            done.set()

    await consumer_queue.consume(on_message)
    body = event(0).model_dump_json().encode()
    started = time.perf_counter()
    for offset in range(0, count, 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
                for _ in range(min(500, count - offset))
            )
        )
    await done.wait()
    elapsed = time.perf_counter() - started
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return count / elapsed


class EventPath:  # the suite path, built once per run
    def __init__(self, suite: Suite, pool: asyncpg.Pool, unit: UnitOfWork) -> None:  # type: ignore[type-arg]
        self.suite, self.pool, self.unit = suite, pool, unit
        self.outbox = Outbox("rtmn/bench")
        self.latencies: list[float] = []
        self.applied = 0
        self.target = 0
        self.done = asyncio.Event()

    async def apply(self, delivery: Delivery) -> None:
        assert delivery.conn is not None
        await delivery.conn.execute("INSERT INTO effects (event_id) VALUES ($1)", delivery.event.id)
        self.latencies.append((datetime.now(UTC) - delivery.event.time).total_seconds() * 1000)
        self.applied += 1
        if self.applied >= self.target:
            self.done.set()

    def relay(self) -> OutboxRelay:
        suite = self.suite
        return OutboxRelay(
            service="bench",
            pool=self.pool,
            amqp_url=suite.amqp_url,
            connect_db=lambda: asyncpg.connect(
                suite.database_url, user=BENCH.role, server_settings={"search_path": "bench"}
            ),
        )

    async def produce(self, count: int, per_transaction: int) -> None:
        for offset in range(0, count, per_transaction):
            async with self.unit.transaction() as conn:
                for n in range(offset, min(count, offset + per_transaction)):
                    await self.outbox.add(conn, event(n))

    def expect(self, count: int) -> None:
        self.latencies.clear()
        self.applied, self.target = 0, count
        self.done.clear()


async def saturation(path: EventPath, count: int) -> tuple[float, float]:
    """Fills the outbox first, then times the relay alone and the whole path to the consumer."""
    path.expect(count)
    producers = [path.produce(count // 4, 100) for _ in range(4)]
    await asyncio.gather(*producers)
    relay = path.relay()
    started = time.perf_counter()
    relay_task = asyncio.ensure_future(relay.run())
    # Polling the table is the measurement: the relay has no "drained" signal of its own.
    while await path.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    relay_rate = count / (time.perf_counter() - started)
    await path.done.wait()
    end_to_end = count / (time.perf_counter() - started)
    relay_task.cancel()
    return relay_rate, end_to_end


async def fixed_rate(path: EventPath, rate: int, seconds: float) -> list[float]:
    count = int(rate * seconds)
    path.expect(count)
    relay_task = asyncio.ensure_future(path.relay().run())
    started = time.perf_counter()
    for n in range(count):
        async with path.unit.transaction() as conn:
            await path.outbox.add(conn, event(n))
        ahead = started + (n + 1) / rate - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)
    await asyncio.wait_for(path.done.wait(), 60)
    relay_task.cancel()
    return list(path.latencies)


async def main(quick: bool) -> None:
    count = 5_000 if quick else 20_000
    seconds = 3.0 if quick else 10.0
    suite = Suite()
    await suite.create()
    try:
        await provision(ADMIN_DSN, suite.database, [BENCH])
        conn = await asyncpg.connect(suite.database_url, user=BENCH.role)
        await migrate(
            conn,
            "bench",
            [
                *discover(Path("/nonexistent")),
                Migration("0001_effects.sql", "CREATE TABLE effects (event_id uuid)"),
            ],
        )
        await conn.close()
        pool = await asyncpg.create_pool(
            suite.database_url,
            user=BENCH.role,
            min_size=4,
            max_size=8,
            server_settings={"search_path": "bench"},
        )
        assert pool is not None
        raw = await baseline(suite.amqp_url, count)
        wakeup = RelayWakeup(lambda: asyncpg.connect(suite.database_url, user=BENCH.role), "bench")
        wakeup_task = asyncio.ensure_future(wakeup.run())
        path = EventPath(suite, pool, UnitOfWork(pool, wakeup.poke))
        consumer = ConsumerRunner(
            service="bench",
            pool=pool,
            amqp_url=suite.amqp_url,
            handlers=[Handler("effects", (PaymentSuccess,), path.apply)],
            prefetch=PREFETCH,
        )
        consumer_task = asyncio.ensure_future(consumer.run())
        await consumer.ready.wait()
        relay_rate, end_to_end = await saturation(path, count)
        latencies = await fixed_rate(path, 1000, seconds)
        consumer_task.cancel()
        wakeup_task.cancel()
        await pool.close()
    finally:
        await suite.destroy()

    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        table(
            [
                ("path", "events/s", "vs raw"),
                ("raw aio-pika publish+consume (baseline)", f"{raw:,.0f}", "1.00"),
                (
                    "relay: outbox → broker (confirmed, marked)",
                    f"{relay_rate:,.0f}",
                    f"{relay_rate / raw:.2f}",
                ),
                (
                    "outbox → relay → consumer (inbox + effect)",
                    f"{end_to_end:,.0f}",
                    f"{end_to_end / raw:.2f}",
                ),
            ]
        )
    )
    print(
        f"\nat 1,000 events/s for {seconds:.0f} s: end-to-end p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(commit → consumer applied), {len(latencies)} events"
    )
    print(
        result_line(
            "events",
            "relay_throughput",
            relay_rate,
            raw,
            "events/s",
            p50_ms=p50,
            p99_ms=p99,
            end_to_end_per_s=round(end_to_end),
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    uvloop.run(main(parser.parse_args().quick))
