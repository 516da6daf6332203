"""The least CPU one payment can cost this machine, whatever code carries it.

    python bench/floor.py [--quick] [--rate PAYMENTS_PER_S]

bench/load.py measures what the suite spends on a payment, end to end. This measures the floor
beneath any implementation of the suite's contract (the events, commits and HTTP exchanges a
payment must cause, whatever code causes them): that infrastructure work, done by the leanest
Python clients at full speed, with no business logic, no validation, no logging and no provider
SDK:

- RabbitMQ: the payment's 5 events (payment.success, wallet.credited, three notification.sent)
  published persistent and mandatory to a topic exchange with confirms pipelined, and their 14
  deliveries to quorum queues bound as the suite binds its consumer groups, consumed with
  manual acks (raw aiormq, prefetch 100, one ack frame per 25 deliveries).
- PostgreSQL: 6 durable commits, the fewest the contract allows: the payment at create, its
  outcome and outbox row at the webhook, the credit with its inbox and outbox rows, the email's
  record and the two pushes' records. Each is a one-row INSERT, from 16 sessions at once so
  that commits group as they do under load. The relays' "sent" marks are left out.
- HTTP: 6 exchanges on kept-alive connections, aiohttp client to aiohttp server: the create
  and the webhook (nginx in front is left out), the order at Razorpay, the email at SendGrid
  and two pushes at FCM.

That is the suite's first shape. The contract's least shape asks less: one
push instead of two (4 events, 5 commits, 5 exchanges) and one analytics consumer group feeding
both sinks instead of one per sink (7 deliveries). Its floor is the one no implementation of
the contract gets under. bench/load.py calls `measure` with the shape it reads from its own run
instead, and compares the suite's CPU with that floor's suite side (`Costs.suite_side_ms`).

Each part runs alone and as fast as it goes, or with --rate steadily at that many payments a
second, one payment's work at a time as a steady load brings it: at the rate the suite carries,
nothing batches as it does flat out (a commit rarely shares its WAL flush, a delivery its frame,
a wake-up its work), so that floor is higher. Its CPU time is read from /proc: this process (the
clients) and the serving side (beam.smp; this run's PostgreSQL backends and the server's
background processes; the HTTP server's process). The sum is a lower bound on the CPU of one
payment. Two cores give 2,000 ms of CPU a second, so 2,000 ms / floor is the most payments a
second this machine could carry if every service's own code cost nothing. The JSON line's
ratio is the least shape's ceiling against a target of 500 payments/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp
import aiormq
import asyncpg
import orjson
import uvloop
from _common import (
    BACKEND,
    TICK_MS,
    all_processes,
    cmdline,
    progress,
    read_proc,
    result_line,
    sample_payment,
    table,
    wait_healthy,
)
from aiohttp import web
from aiormq.abc import DeliveredMessage

from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.testing.infra import ADMIN_DSN, Suite
from rtmn_shared.testing.processes import free_port

TARGET = 500.0
CORES_MS = 2_000.0


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` stands for one dot-separated word, `#` for zero or more."""

    def match(pattern: list[str], words: list[str]) -> bool:
        if not pattern:
            return not words
        if pattern[0] == "#":
            return any(match(pattern[1:], words[i:]) for i in range(len(words) + 1))
        if not words or pattern[0] not in ("*", words[0]):
            return False
        return match(pattern[1:], words[1:])

    return match(binding_key.split("."), routing_key.split("."))


@dataclass(frozen=True)
class Shape:
    """What one payment asks of the infrastructure."""

    name: str
    tag: str  # names its exchange and queues
    events: tuple[tuple[str, int], ...]  # event type, how many per payment
    queues: tuple[tuple[str, tuple[str, ...]], ...]  # consumer group's queue, its binding keys
    commits: int
    exchanges: int  # HTTP; all but two (the create and the webhook) are with providers

    @property
    def publishes(self) -> int:
        return sum(count for _, count in self.events)

    @property
    def deliveries(self) -> int:
        """A queue gets one copy of an event however many of its keys match."""
        return sum(
            count * sum(any(topic_matches(key, event) for key in keys) for _, keys in self.queues)
            for event, count in self.events
        )


# As the suite did it on 2026-11-27: two pushes (payment and credit), and analytics with one
# consumer group per sink, each bound to every event so that a sink's backlog never holds the
# other. bench/load.py reads the shape the suite has from its run instead.
SUITE = Shape(
    "the suite's",
    "suite",
    (("payment.success", 1), ("wallet.credited", 1), ("notification.sent", 3)),
    (
        ("wallet.credit-cashback", ("payment.success",)),
        ("notify.email-order-confirmation", ("payment.success",)),
        ("notify.push-payment-success", ("payment.success",)),
        ("notify.push-wallet-credited", ("wallet.credited",)),
        ("analytics.mixpanel", ("#",)),
        ("analytics.ga4", ("#",)),
    ),
    commits=6,
    exchanges=6,
)
# The fewest the contract allows: payment.success fans out to the credit, the email and the push
# (its three named groups), one push, and one analytics group feeding both sinks.
LEAST = Shape(
    "the contract's least",
    "least",
    (("payment.success", 1), ("wallet.credited", 1), ("notification.sent", 2)),
    (
        ("wallet.credit-cashback", ("payment.success",)),
        ("notify.email-order-confirmation", ("payment.success",)),
        ("notify.push-payment-success", ("payment.success",)),
        ("analytics.forward", ("#",)),
    ),
    commits=5,
    exchanges=5,
)
SHAPES = (SUITE, LEAST)
PREFETCH = 100
ACK_EVERY = 25
SESSIONS = 16
HTTP_IN_FLIGHT = 32


@dataclass
class Part:
    """CPU milliseconds per unit of work: a payment's events, one commit, one exchange."""

    client_ms: float  # this process
    server_ms: float  # the serving side

    @property
    def total_ms(self) -> float:
        return self.client_ms + self.server_ms


async def cpu_of(
    units: int,
    server_pids: Callable[[], Iterable[int]],
    work: Callable[[], Awaitable[None]],
) -> Part:
    """CPU of `work`, this process's apart from the serving side's, per unit."""

    def ticks(pids: Iterable[int]) -> dict[int, int]:
        return {pid: proc.ticks for pid in pids if (proc := read_proc(pid))}

    servers = list(server_pids())
    client, server = ticks([os.getpid()]), ticks(servers)
    await work()
    client_after, server_after = ticks([os.getpid()]), ticks(servers)

    def used(before: dict[int, int], after: dict[int, int]) -> float:
        return sum(t - before.get(pid, t) for pid, t in after.items()) * TICK_MS / units

    return Part(used(client, client_after), used(server, server_after))


async def paced(rate: float, payments: int, one: Callable[[], Awaitable[None]]) -> None:
    """One payment's work started every 1/rate s, overlapping as a steady load's do: the floor at
    the rate the suite carries, where nothing batches as it does flat out."""
    loop = asyncio.get_running_loop()
    start, started = loop.time(), []
    for n in range(payments):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        started.append(asyncio.ensure_future(one()))
    await asyncio.gather(*started)


def event_body(event_type: str) -> bytes:
    return (
        CloudEvent.of(sample_payment(0), source="rtmn/bench-floor")
        .model_copy(update={"type": event_type})
        .model_dump_json()
        .encode()
    )


# ----------------------------------------------------------------------- RabbitMQ ----


async def broker(amqp_url: str, shape: Shape, payments: int, rate: float | None = None) -> Part:
    """CPU per payment of its events, published and consumed: flat out, or `rate` a second."""
    exchange = f"floor.{shape.tag}"
    consuming = await aiormq.connect(amqp_url)
    publishing = await aiormq.connect(amqp_url)
    try:
        setup = await consuming.channel()
        await setup.exchange_declare(exchange, exchange_type="topic", durable=True)
        queues = [f"{shape.tag}.{queue}" for queue, _ in shape.queues]
        for queue, (_, keys) in zip(queues, shape.queues, strict=True):
            await setup.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            for key in keys:
                await setup.queue_bind(queue, exchange, routing_key=key)

        received, expected, done = 0, 0, asyncio.Event()

        async def on_message(message: DeliveredMessage) -> None:
            # The cheapest manual ack: one frame for every ACK_EVERY deliveries of a channel.
            nonlocal received
            tag = message.delivery.delivery_tag
            if tag % ACK_EVERY == 0:
                await message.channel.basic_ack(tag, multiple=True)
            received += 1
            if received == expected:
                done.set()

        for queue in queues:
            channel = await consuming.channel()
            await channel.basic_qos(prefetch_count=PREFETCH)
            await channel.basic_consume(queue, on_message)

        channel = await publishing.channel(publisher_confirms=True)
        messages = [
            (
                event,
                event_body(event),
                aiormq.spec.Basic.Properties(
                    delivery_mode=2,
                    content_type="application/json",
                    message_id=str(uuid.uuid4()),
                    message_type=event,
                ),
            )
            for event, count in shape.events
            for _ in range(count)
        ]

        async def publish(payments: int) -> None:
            await asyncio.gather(
                *(
                    channel.basic_publish(
                        body,
                        exchange=exchange,
                        routing_key=event,
                        properties=properties,
                        mandatory=True,
                    )
                    for _ in range(payments)
                    for event, body, properties in messages
                )
            )

        async def run(count: int, rate: float | None = None) -> None:
            nonlocal received, expected
            received, expected = 0, count * shape.deliveries
            done.clear()
            if rate is None:
                for first in range(0, count, 100):
                    await publish(min(100, count - first))
            else:
                await paced(rate, count, lambda: publish(1))
            await asyncio.wait_for(done.wait(), timeout=300)

        await run(min(200, payments))  # warm-up: connections, queues' first segments
        part = await cpu_of(
            payments,
            lambda: (p.pid for p in all_processes() if p.comm == "beam.smp"),
            lambda: run(payments, rate),
        )
        await consuming.close()  # its consumers first, or the broker cancels them noisily
        # Gone again, so that a vhost shared with a running suite keeps only the suite's queues.
        cleanup = await publishing.channel()
        for queue in queues:
            await cleanup.queue_delete(queue)
        await cleanup.exchange_delete(exchange)
        return part
    finally:
        await publishing.close()
        await consuming.close()


# --------------------------------------------------------------------- PostgreSQL ----


def postgres_pids(backends: list[int]) -> list[int]:
    """The floor's own backends and their server's background processes (WAL writer, ...), so
    that other sessions of the same database (a suite idling meanwhile) are not counted."""
    postgres = [p for p in all_processes() if p.comm == "postgres"]
    servers = {p.ppid for p in postgres if p.pid in backends}
    background = [
        p.pid for p in postgres if p.ppid in servers and not BACKEND.match(cmdline(p.pid))
    ]
    return [*backends, *background]


async def database(
    suite: Suite, payments: int, per_payment: int, rate: float | None = None
) -> Part:
    """CPU per durable one-row commit, `per_payment` of them a payment: flat out from SESSIONS
    sessions at once, or `rate` payments a second."""
    pool = await asyncpg.create_pool(
        ADMIN_DSN, database=suite.database, min_size=SESSIONS, max_size=SESSIONS
    )
    assert pool is not None
    try:
        sessions = [await pool.acquire() for _ in range(SESSIONS)]
        backends = [await conn.fetchval("SELECT pg_backend_pid()") for conn in sessions]
        for conn in sessions:
            await pool.release(conn)
        await pool.execute("CREATE TABLE floor_rows (id uuid PRIMARY KEY, body jsonb NOT NULL)")
        body = orjson.dumps({"amount": 49_900, "currency": "INR", "status": "captured"}).decode()

        async def insert(share: int) -> None:
            async with pool.acquire() as conn:
                for _ in range(share):
                    await conn.execute(
                        "INSERT INTO floor_rows (id, body) VALUES ($1, $2)", uuid.uuid4(), body
                    )

        async def run(count: int) -> None:
            await asyncio.gather(
                *(insert(count // SESSIONS + (n < count % SESSIONS)) for n in range(SESSIONS))
            )

        async def one_payment() -> None:
            await asyncio.gather(*(insert(1) for _ in range(per_payment)))

        commits = payments * per_payment
        await run(min(1_000, commits))
        part = await cpu_of(
            commits,
            lambda: postgres_pids(backends),
            lambda: run(commits) if rate is None else paced(rate, payments, one_payment),
        )
        await pool.execute("DROP TABLE floor_rows")  # the suite's database, when load.py's
        return part
    finally:
        await pool.close()


# --------------------------------------------------------------------------- HTTP ----


async def serve(port: int) -> None:
    """The HTTP server's process: answers every POST with a small JSON, as a provider would."""

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "order_floor", "status": "created"})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/{name}", accept)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def http(payments: int, per_payment: int, rate: float | None = None) -> Part:
    """CPU per HTTP exchange, client and server, `per_payment` of them a payment: flat out from
    HTTP_IN_FLIGHT senders at once, or `rate` payments a second."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", str(port))
    base = f"http://127.0.0.1:{port}"
    body = event_body("payment.success")
    try:
        await wait_healthy(base, server, "HTTP")
        async with aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(limit=HTTP_IN_FLIGHT)
        ) as client:

            async def sender(share: int) -> None:
                for _ in range(share):
                    async with client.post(
                        "/v1/orders", data=body, headers={"Content-Type": "application/json"}
                    ) as response:
                        await response.read()
                        assert response.status == 200, response.status

            async def run(count: int) -> None:
                await asyncio.gather(
                    *(
                        sender(count // HTTP_IN_FLIGHT + (n < count % HTTP_IN_FLIGHT))
                        for n in range(HTTP_IN_FLIGHT)
                    )
                )

            async def one_payment() -> None:
                await asyncio.gather(*(sender(1) for _ in range(per_payment)))

            exchanges = payments * per_payment
            await run(min(1_000, exchanges))
            return await cpu_of(
                exchanges,
                lambda: [server.pid],
                lambda: run(exchanges) if rate is None else paced(rate, payments, one_payment),
            )
    finally:
        server.terminate()
        await server.wait()


# ------------------------------------------------------------------------ the floor ----


@dataclass
class Costs:
    """What each part of a payment costs this machine at the least: a shape's events, one
    commit, one HTTP exchange."""

    events: dict[Shape, Part]
    commit: Part
    exchange: Part

    def postgres_ms(self, shape: Shape) -> float:
        return shape.commits * self.commit.total_ms

    def http_ms(self, shape: Shape) -> float:
        return shape.exchanges * self.exchange.total_ms

    def floor_ms(self, shape: Shape) -> float:
        return self.events[shape].total_ms + self.postgres_ms(shape) + self.http_ms(shape)

    def providers_elsewhere_ms(self, shape: Shape) -> float:
        """The floor less the providers' side of their exchanges, which runs on their machines."""
        return self.floor_ms(shape) - (shape.exchanges - 2) * self.exchange.server_ms

    def suite_side_ms(self, shape: Shape) -> float:
        """The part of the floor that runs where the suite runs: neither the clients' side of
        the create and the webhook nor the providers' side of the rest (what bench/load.py's
        suite total leaves out too)."""
        inbound = 2 * self.exchange.server_ms
        outbound = (shape.exchanges - 2) * self.exchange.client_ms
        return self.events[shape].total_ms + self.postgres_ms(shape) + inbound + outbound


async def measure(
    suite: Suite, shapes: Iterable[Shape], payments: int, rate: float | None = None
) -> Costs:
    """Each part on the suite's database and vhost, alone and as fast as it goes (or `rate`
    payments a second); what it declares there it removes again, so a running suite's database
    and vhost will do."""
    pace = "flat out" if rate is None else f"{rate:.0f} a second"
    events = {}
    for shape in shapes:
        progress(f"RabbitMQ: {payments} payments' events, {shape.name} shape, {pace}")
        events[shape] = await broker(suite.amqp_url, shape, payments, rate)
    commits = max(s.commits for s in events)
    progress(f"PostgreSQL: {payments * commits} commits, {pace}")
    commit = await database(suite, payments, commits, rate)
    exchanges = max(s.exchanges for s in events)
    progress(f"HTTP: {payments * exchanges} exchanges, {pace}")
    return Costs(events, commit, await http(payments, exchanges, rate))


def units_table(costs: Costs) -> str:
    units: list[tuple[str, ...]] = [("unit", "client ms", "serving ms")]
    units += [
        (f"{s.name} events ({s.publishes} publishes, {s.deliveries} deliveries)", *ms(part))
        for s, part in costs.events.items()
    ]
    units += [("one commit", *ms(costs.commit)), ("one HTTP exchange", *ms(costs.exchange))]
    return table(units)


def shapes_table(costs: Costs) -> str:
    rows: list[tuple[str, ...]] = [
        ("ms per payment", "RabbitMQ", "PostgreSQL", "HTTP", "floor", "at most/s", "†")
    ]
    for shape, events in costs.events.items():
        floor = costs.floor_ms(shape)
        rows.append(
            (
                f"{shape.name} shape ({shape.commits} commits, {shape.exchanges} exchanges)",
                f"{events.total_ms:.2f}",
                f"{costs.postgres_ms(shape):.2f}",
                f"{costs.http_ms(shape):.2f}",
                f"{floor:.2f}",
                f"{CORES_MS / floor:.0f}",
                f"{CORES_MS / costs.providers_elsewhere_ms(shape):.0f}",
            )
        )
    return table(rows)


async def main(quick: bool, rate: float | None) -> None:
    payments = 500 if quick else 3_000
    suite = Suite()
    progress(f"provisioning {suite.database} and vhost {suite.vhost}")
    await suite.create()
    try:
        costs = await measure(suite, SHAPES, payments, rate)
    finally:
        await suite.destroy()

    print(units_table(costs))
    print()
    print(shapes_table(costs))
    print(
        f"(at most/s: payments a second with 2 cores 100 % busy and nothing else running; "
        f"†: the same with the providers' servers elsewhere; target {TARGET:.0f})"
    )
    floor = costs.floor_ms(LEAST)
    print(
        result_line(
            "floor",
            "payments_per_s_ceiling",
            CORES_MS / floor,
            TARGET,
            "payments/s",
            shape=LEAST.tag,
            floor_ms=floor,
            ceiling_providers_elsewhere=CORES_MS / costs.providers_elsewhere_ms(LEAST),
            suite_shape_floor_ms=costs.floor_ms(SUITE),
            suite_shape_ceiling=CORES_MS / costs.floor_ms(SUITE),
        )
    )


def ms(part: Part) -> tuple[str, str]:
    return f"{part.client_ms:.3f}", f"{part.server_ms:.3f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 payments instead of 3,000")
    parser.add_argument(
        "--rate", type=float, help="payments a second, steadily, instead of flat out"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    uvloop.run(serve(args.serve) if args.serve else main(args.quick, args.rate))
