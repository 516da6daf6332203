"""Pushes per second through notify's delivery log, beside the bare FCM call it wraps.

    python bench/notify_bench.py [--quick]

Each logged push is what `notify.push-payment-success` does for one `payment.success`: claim
the delivery row and snapshot the user's tokens (one short transaction), send one FCM HTTP v1
request per token to the FCM contract fake, then record the per-token result, the delivery's
status and its notification.sent outbox row (one transaction). Baseline (same run, same fake,
same HTTP session, same concurrency): the bare FcmPushSender.send for the same token, with no
log, no idempotency and no event. The ratio is what exactly-once bookkeeping
costs on top of the provider call.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import uvloop
from _common import median, percentile, result_line, table

from notify.delivery import Deliveries
from notify.providers import PushMessage
from notify.providers.fcm import FcmPushSender
from notify.providers.fcm_auth import credentials_of
from notify.providers.sandbox import SandboxEmailSender
from notify.store import DeliveryKey
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import Suite

NOTIFY = SERVICES["notify"]
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "notify" / "migrations"
POOL_SIZE = 4  # the service's default DB_POOL_SIZE
WORKERS = 16
ROUNDS = 3
MESSAGE = PushMessage(
    title="Payment Successful",
    body="Your payment of ₹499.00 for order #R1 was successful.",
    data={"type": "payment_success", "orderId": "ord_1", "deepLink": "rezapp://orders/ord_1"},
)

Send = Callable[[str], Awaitable[None]]


def logged(deliveries: Deliveries) -> Send:
    async def send(user_id: str) -> None:
        key = DeliveryKey(f"payment:{uuid.uuid4().hex}", uuid.uuid4(), "push", user_id, "bench")
        await deliveries.push(key, MESSAGE)

    return send


def bare(sender: FcmPushSender) -> Send:
    async def send(user_id: str) -> None:
        [result] = await sender.send(MESSAGE, [f"tok-{user_id}"])
        assert result.outcome == "sent"

    return send


async def run(send: Send, users: list[str]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(users)

    async def worker() -> None:
        for user_id in queue:
            started = time.perf_counter()
            await send(user_id)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return len(users) / (time.perf_counter() - started), latencies


class RemoteFake:
    """The FCM fake in a process of its own, like a remote FCM: in a thread of this process it
    would fight the measured loop for the GIL and dominate both paths."""

    SCRIPT = (
        "import asyncio\n"
        "from rtmn_fakes.fcm import FcmFake\n"
        "async def main():\n"
        "    async with FcmFake(project_id='rtmn-bench') as fake:\n"
        "        print(fake.url, fake.access_token, flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )

    def __init__(self, process: subprocess.Popen[str], url: str, access_token: str) -> None:
        self.process, self.url, self.access_token = process, url, access_token
        self.project_id = "rtmn-bench"

    @classmethod
    def start(cls) -> RemoteFake:
        process = subprocess.Popen(
            [sys.executable, "-c", cls.SCRIPT], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        url, token = process.stdout.readline().split()
        return cls(process, url, token)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def main(quick: bool) -> None:
    count = 600 if quick else 2_400
    suite = Suite()
    await suite.create()
    fake = RemoteFake.start()
    try:
        conn = await asyncpg.connect(suite.database_url, user=NOTIFY.owner)
        await migrate(conn, NOTIFY.schema, discover(MIGRATIONS))
        await conn.close()
        pool = await asyncpg.create_pool(
            suite.database_url,
            user=NOTIFY.role,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"search_path": NOTIFY.schema},
        )
        assert pool is not None
        users = [f"user-{n}" for n in range(count // ROUNDS)]
        await pool.executemany(
            "INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, 'android')",
            [(f"tok-{u}", u) for u in users],
        )
        credential = credentials_of(
            project_id=fake.project_id,
            client_email=None,
            private_key=None,
            token_uri="",  # unused with a static access token
            access_token=fake.access_token,
        )
        session = aiohttp.ClientSession()
        sender = FcmPushSender(
            session,
            credential,
            project_id=fake.project_id,
            url=fake.url + "/v1/projects/{0}/messages:send",
        )
        deliveries = Deliveries(
            pool,
            email=SandboxEmailSender(),
            push=sender,
            outbox=Outbox("rtmn/notify"),
            lease_seconds=120,
        )
        paths = {"bare FCM call": bare(sender), "delivery log + FCM": logged(deliveries)}
        rates: dict[str, list[float]] = {}
        latencies: dict[str, list[float]] = {}
        # Interleaved rounds, medians: the machine drifts, so each path sees the same drift.
        # Round 0 only warms the pool, the HTTP connections and the server's plans.
        for round_ in range(ROUNDS + 1):
            for name, send in paths.items():
                rate, times = await run(send, users[: len(users) // 4] if not round_ else users)
                if round_:
                    rates.setdefault(name, []).append(rate)
                    latencies.setdefault(name, []).extend(times)
        sent = await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        events = await pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'notification.sent'")
        await sender.aclose()
        await session.close()
        await pool.close()
        rows = [("path", "pushes/s", "p50 ms", "p99 ms")]
        for name in paths:
            rows.append(
                (
                    name,
                    f"{median(rates[name]):,.0f}",
                    f"{percentile(latencies[name], 50):.2f}",
                    f"{percentile(latencies[name], 99):.2f}",
                )
            )
        print(table(rows))
        print(
            f"\n{WORKERS} workers, pool {POOL_SIZE}, one token per user; "
            f"deliveries sent: {sent}, notification.sent events: {events}"
        )
        log = "delivery log + FCM"
        print(
            result_line(
                "notify",
                "pushes_per_s",
                median(rates[log]),
                median(rates["bare FCM call"]),
                "pushes/s",
                p50_ms=percentile(latencies[log], 50),
                p99_ms=percentile(latencies[log], 99),
            )
        )
    finally:
        fake.stop()
        await suite.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    uvloop.run(main(parser.parse_args().quick))
