"""Wallet credits per second through the ledger, beside a naive balance update.

    python bench/wallet_bench.py [--quick]

Each credit is what the `wallet.credit-cashback` consumer does for one `payment.success`: in
one transaction, the inbox row, the payment lock, the tier lookup, the earnings row, the
balance upsert with its entry, the outbox row and the pending-refunds check. Baseline (same
database, same run, same concurrency and pool): the naive credit, one transaction with an
UPDATE of the balance and an INSERT of the entry, with no idempotency and no event.
Both run with many users (no contention) and with one hot user (every credit queues on one
balance row).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import uvloop
from _common import median, percentile, result_line, table

from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import Delivery
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.inbox import DEFAULT_INBOX
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import Suite
from wallet import handlers
from wallet.ledger import Ledger
from wallet.settings import WalletSettings

WALLET = SERVICES["wallet"]
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "wallet" / "migrations"
POOL_SIZE = 4  # the service's default DB_POOL_SIZE
WORKERS = 16
ROUNDS = 3

NAIVE_SCHEMA = """
CREATE TABLE naive_balances (user_id TEXT PRIMARY KEY, coins BIGINT NOT NULL);
CREATE TABLE naive_entries (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            user_id TEXT NOT NULL, coins BIGINT NOT NULL, payment_id TEXT NOT NULL);
"""

Credit = Callable[[asyncpg.Pool, PaymentSuccess], Awaitable[None]]  # type: ignore[type-arg]


def payment(user_id: str) -> PaymentSuccess:
    pid = uuid.uuid4().hex
    return PaymentSuccess(
        payment_id=pid,
        order_id=f"ord_{pid}",
        order_number="R1",
        user_id=user_id,
        merchant_id="m1",
        amount=49_900,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=f"rzp_{pid}",
        paid_at=datetime.now(UTC),
    )


def ledger_credit(settings: WalletSettings) -> Credit:
    [credit, *_] = handlers.build_handlers(Ledger(settings.earning_rule(), Outbox("rtmn/wallet")))

    async def apply(pool: asyncpg.Pool, data: PaymentSuccess) -> None:  # type: ignore[type-arg]
        event = CloudEvent.of(data, source="rtmn/bench")
        async with pool.acquire() as conn, conn.transaction():
            if await DEFAULT_INBOX.record(conn, "wallet.credit-cashback", event):
                await credit.apply(Delivery(event, data, 1, conn))

    return apply


async def naive_credit(pool: asyncpg.Pool, data: PaymentSuccess) -> None:  # type: ignore[type-arg]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO naive_balances (user_id, coins) VALUES ($1, 24) "
            "ON CONFLICT (user_id) DO UPDATE SET coins = naive_balances.coins + 24",
            data.user_id,
        )
        await conn.execute(
            "INSERT INTO naive_entries (user_id, coins, payment_id) VALUES ($1, 24, $2)",
            data.user_id,
            data.payment_id,
        )


async def run(
    pool: asyncpg.Pool,  # type: ignore[type-arg]
    credit: Credit,
    count: int,
    users: int,
) -> tuple[float, list[float]]:
    prefix = uuid.uuid4().hex[:6]
    events = [payment(f"{prefix}_{n % users}") for n in range(count)]
    latencies: list[float] = []
    queue = iter(events)

    async def worker() -> None:
        for data in queue:
            started = time.perf_counter()
            await credit(pool, data)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return count / (time.perf_counter() - started), latencies


async def main(quick: bool) -> None:
    count = 900 if quick else 2_700
    suite = Suite()
    await suite.create()
    try:
        conn = await asyncpg.connect(suite.database_url, user=WALLET.owner)
        await migrate(conn, WALLET.schema, discover(MIGRATIONS))
        await conn.execute(f"SET search_path TO {WALLET.schema}; {NAIVE_SCHEMA}")
        await conn.close()
        pool = await asyncpg.create_pool(
            suite.database_url,
            user=WALLET.role,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"search_path": WALLET.schema},
        )
        assert pool is not None
        settings = WalletSettings(jwt_public_key=suite.public_key)
        ledger = ledger_credit(settings)
        rows = [("path", "users", "credits/s", "p50 ms", "p99 ms")]
        rates: dict[tuple[str, str], list[float]] = {}
        latencies: dict[tuple[str, str], list[float]] = {}
        # Interleaved rounds, medians: the machine drifts, so each path sees the same drift.
        # Round 0 only warms the pool, the caches and the server's plans.
        for round_ in range(ROUNDS + 1):
            for label, users in (("many", 1_000), ("one", 1)):
                for name, credit in (("naive", naive_credit), ("ledger", ledger)):
                    rate, times = await run(pool, credit, count // ROUNDS, users)
                    if round_:
                        rates.setdefault((name, label), []).append(rate)
                        latencies.setdefault((name, label), []).extend(times)
        for key, values in rates.items():
            rows.append(
                (
                    *key,
                    f"{median(values):,.0f}",
                    f"{percentile(latencies[key], 50):.2f}",
                    f"{percentile(latencies[key], 99):.2f}",
                )
            )
        sums_ok = await pool.fetchval(
            "SELECT bool_and(b.coins = e.total) FROM balances b JOIN "
            "(SELECT user_id, sum(coins) AS total FROM entries GROUP BY user_id) e USING (user_id)"
        )
        await pool.close()
        print(table(rows))
        print(
            f"\n{WORKERS} workers, pool {POOL_SIZE}; balance = sum of entries for every user: "
            f"{sums_ok}"
        )
        print(
            result_line(
                "wallet",
                "credits_per_s",
                median(rates["ledger", "many"]),
                median(rates["naive", "many"]),
                "credits/s",
                p50_ms=percentile(latencies["ledger", "many"], 50),
                p99_ms=percentile(latencies["ledger", "many"], 99),
            )
        )
    finally:
        await suite.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    uvloop.run(main(parser.parse_args().quick))
