"""Outbox → relay → consumer throughput and end-to-end latency, beside raw aio-pika.

    python bench/events.py [--quick]

Baselines, same broker and same run: pipelined confirmed publishes to a quorum queue (what the
relay is compared with) and a manual-ack consumer with the same prefetch (what the consumer
runner is compared with). The suite path adds PostgreSQL on both sides: the relay reads and
marks outbox rows; the consumer commits its inbox row and its effect in one transaction.

As deployed, the consumer runs in a process of its own (started here with --consume); the relay
and the producer share this one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import uvloop
from _common import median, progress, result_line, sample_payment, table

from rtmn_shared.db import Pool, keep_session
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import Outbox, OutboxRow
from rtmn_shared.events.publishers import Logins
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.events.wakeup import RelayWakeup, UnitOfWork
from rtmn_shared.migrations import Migration, discover, migrate
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import Suite, provision_for_tests

BENCH = ServiceInfo("bench", 0)
PREFETCH = 200
ROUNDS = 3
EFFECTS = Migration(
    "0001_effects.sql",
    "CREATE TABLE effects (event_id uuid PRIMARY KEY, latency_ms double precision NOT NULL)",
)


async def open_pool(database_url: str) -> Pool:
    pool = await asyncpg.create_pool(
        database_url,
        user=BENCH.role,
        min_size=2,
        max_size=8,
        server_settings={"search_path": BENCH.schema},
        reset=keep_session,
    )
    assert pool is not None
    return pool


# ---------------------------------------------------------------- raw baselines ----


async def raw_publish(channel: aio_pika.abc.AbstractChannel, queue: str, count: int) -> float:
    body = sample_payment(0).model_dump_json().encode()
    started = time.perf_counter()
    for offset in range(0, count, 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue,
                )
                for _ in range(min(500, count - offset))
            )
        )
    return count / (time.perf_counter() - started)


async def raw_consume(connection: aio_pika.abc.AbstractConnection, queue: str, count: int) -> float:
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=PREFETCH)
    done, received = asyncio.Event(), 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received == count:
            done.set()

    started = time.perf_counter()
    await (await consume_channel.get_queue(queue)).consume(on_message)
    await done.wait()
    return count / (time.perf_counter() - started)


# ------------------------------------------------------------------- the suite ----


def handler() -> Handler:
    async def apply(delivery: Delivery) -> None:
        assert delivery.conn is not None
        await delivery.conn.execute(
            "INSERT INTO effects (event_id, latency_ms) "
            "VALUES ($1, extract(epoch FROM clock_timestamp() - $2::timestamptz) * 1000)",
            delivery.event.id,
            delivery.event.time,
        )

    return Handler("effects", (PaymentSuccess,), apply)


async def consume(database_url: str, amqp_url: str) -> None:
    """The consumer process: runs until killed."""
    pool = await open_pool(database_url)
    # With the publisher check, as a service's consumers run (one set lookup a delivery).
    runner = ConsumerRunner(
        service="bench",
        pool=pool,
        amqp_url=amqp_url,
        handlers=[handler()],
        prefetch=PREFETCH,
        logins=Logins(os.environ["SERVICE_USER_PREFIX"]),
    )
    running = asyncio.ensure_future(runner.run())
    await runner.ready.wait()
    print("ready", flush=True)
    await running


async def commit_at_once(unit: UnitOfWork, first: int, count: int) -> None:
    """`count` outbox rows in one statement and one commit, which wakes the relay."""
    rows = [
        OutboxRow.of(CloudEvent.of(sample_payment(n), source="rtmn/bench"))
        for n in range(first, first + count)
    ]
    async with unit.transaction() as conn:
        await conn.execute(
            "INSERT INTO outbox (event_id, type, subject, payload) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])",
            *(list(column) for column in zip(*rows, strict=True)),
        )


async def until(pool: Pool, sql: str, target: int) -> None:
    # Polling the table is the measurement itself: nothing else knows when the work is done.
    while await pool.fetchval(sql) < target:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def start_consumer(suite: Suite) -> asyncio.subprocess.Process:
    consumer = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--consume",
        suite.database_url,
        suite.amqp_url,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "SERVICE_USER_PREFIX": suite.logins.prefix},
    )
    assert consumer.stdout is not None
    await consumer.stdout.readline()  # "ready"
    progress("a consumer process is ready")
    return consumer


async def paced_run(unit: UnitOfWork, outbox: Outbox, first: int, count: int, rate: int) -> None:
    started = time.perf_counter()
    for n in range(count):
        async with unit.transaction() as conn:
            await outbox.add(conn, sample_payment(first + n))
        ahead = started + (n + 1) / rate - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def measure(suite: Suite, quick: bool) -> dict[str, float]:
    count = 5_000 if quick else 20_000
    seconds = 3.0 if quick else 10.0
    pool = await open_pool(suite.database_url)
    wakeup = RelayWakeup(lambda: asyncpg.connect(suite.database_url, user=BENCH.role), "bench")
    wakeup_task = asyncio.ensure_future(wakeup.run())
    unit, outbox = UnitOfWork(pool, wakeup.poke), Outbox("rtmn/bench")

    def relay() -> OutboxRelay:
        return OutboxRelay(
            service="bench",
            pool=pool,
            amqp_url=suite.amqp_url_as("payments"),  # as payments' relay: the events' producer
            connect_db=lambda: asyncpg.connect(suite.database_url, user=BENCH.role),
        )

    # The consumer group's queue exists before anything is relayed into it.
    declare = ConsumerRunner(
        service="bench", pool=pool, amqp_url=suite.amqp_url, handlers=[handler()]
    )
    declaring = asyncio.ensure_future(declare.run())
    await declare.ready.wait()
    declaring.cancel()

    # Rounds of raw publish and relay in turn, so the machine's drift hits both alike; each
    # reports its median round.
    connection = await aio_pika.connect(suite.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    raw_queue = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await channel.declare_queue(raw_queue, durable=True, arguments={"x-queue-type": "quorum"})
    relaying = asyncio.ensure_future(relay().run())
    per_round = count // ROUNDS
    raw_rates, relay_rates = [], []
    for n in range(ROUNDS):
        raw_rates.append(await raw_publish(channel, raw_queue, per_round))
        await commit_at_once(unit, n * per_round, per_round)
        started = time.perf_counter()
        await until(
            pool, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL", (n + 1) * per_round
        )
        relay_rates.append(per_round / (time.perf_counter() - started))
    results: dict[str, float] = {
        "raw_publish": median(raw_rates),
        "relay": median(relay_rates),
        "raw_consume": await raw_consume(connection, raw_queue, per_round * ROUNDS),
    }
    await channel.queue_delete(raw_queue)
    await connection.close()
    count = per_round * ROUNDS

    progress("relayed; starting the consumer process")
    consumers = [await start_consumer(suite)]
    try:
        started = time.perf_counter()
        await until(pool, "SELECT count(*) FROM effects", count)
        results["consumer"] = count / (time.perf_counter() - started)
        next_event = count
        for replicas in (1, 2):  # consumers scale out: competing consumers on one queue
            if len(consumers) < replicas:
                consumers.append(await start_consumer(suite))
            await truncate_effects(suite)
            paced = int(1000 * seconds)
            await paced_run(unit, outbox, next_event, paced, rate=1000)
            next_event += paced
            await until(pool, "SELECT count(*) FROM effects", paced)
            row = await pool.fetchrow(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99 FROM effects"
            )
            results[f"p50x{replicas}"], results[f"p99x{replicas}"] = row["p50"], row["p99"]
    finally:
        for consumer in consumers:
            consumer.terminate()
            await consumer.wait()
        relaying.cancel()
        wakeup_task.cancel()
    await pool.close()
    return results


async def truncate_effects(suite: Suite) -> None:
    """As the schema's owner: the runtime role may delete rows, not truncate a table."""
    conn = await asyncpg.connect(suite.database_url, user=BENCH.owner)
    try:
        await conn.execute("TRUNCATE bench.effects")
    finally:
        await conn.close()


async def main(quick: bool) -> None:
    suite = Suite()
    await suite.create()
    try:
        await provision_for_tests(suite.database, [BENCH])
        conn = await asyncpg.connect(suite.database_url, user=BENCH.owner)
        await migrate(conn, BENCH.schema, [*discover(Path("/nonexistent")), EFFECTS])
        await conn.close()
        r = await measure(suite, quick)
    finally:
        await suite.destroy()

    print(
        table(
            [
                ("path", "events/s", "vs its baseline"),
                ("raw aio-pika: pipelined confirmed publish", f"{r['raw_publish']:,.0f}", "1.00"),
                (
                    "relay: outbox rows → broker, confirmed and marked",
                    f"{r['relay']:,.0f}",
                    f"{r['relay'] / r['raw_publish']:.2f}",
                ),
                ("raw aio-pika: manual-ack consume", f"{r['raw_consume']:,.0f}", "1.00"),
                (
                    "consumer runner: inbox + effect per event",
                    f"{r['consumer']:,.0f}",
                    f"{r['consumer'] / r['raw_consume']:.2f}",
                ),
            ]
        )
    )
    print()
    for replicas in (1, 2):
        print(
            f"at 1,000 events/s with {replicas} consumer process(es): commit → applied "
            f"p50 {r[f'p50x{replicas}']:.1f} ms, p99 {r[f'p99x{replicas}']:.1f} ms"
        )
    print(
        result_line(
            "events",
            "relay_throughput",
            r["relay"],
            r["raw_publish"],
            "events/s",
            p50_ms=r["p50x1"],
            p99_ms=r["p99x1"],
            p99_ms_two_consumers=r["p99x2"],
            consumer_per_s=round(r["consumer"]),
            consumer_ratio=round(r["consumer"] / r["raw_consume"], 3),
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--consume", nargs=2, metavar=("DATABASE_URL", "AMQP_URL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.consume:
        uvloop.run(consume(*args.consume))
    else:
        uvloop.run(main(args.quick))
