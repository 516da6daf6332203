"""Consumer inbox and webhook dedupe rates with 10 million rows already in their tables, beside
the same on empty tables.

    python bench/inbox_growth.py [--quick]

Two throwaway databases, each with payments' schema (its `inbox` and `webhook_deliveries`, both
partitioned by day): `empty`, and `full`, whose two tables get 10 million rows each (1 million
with --quick) spread over the past seven days, one partition a day, as history lies inside the
default 7-day window; written by INSERT ... SELECT generate_series, then vacuumed, analysed and
checkpointed as a quiet night would leave them.

Measured on both side by side, in rounds: the same load runs against `empty` and `full` at
once, so whatever else the shared machine does meanwhile (a neighbour's load swings a rate
measured alone by half from one second to the next) slows both alike, and a side whose work
costs more (CPU, a disk read, a lock) gets less done in the same time. Each rate is therefore
about half what that side would do alone. A path's ratio is the median over the rounds of
full/empty; target ≥ 0.90:
- consumer, batches: the runner's batch transaction as it runs under load, from 2 workers (its
  batch_workers): `Inbox.record_batch` for 32 new events, then an effect row for each;
- consumer, one at a time: the runner's single transaction (`Inbox.record`, an effect row) from
  8 concurrent tasks;
- webhooks: signed Razorpay payment.captured webhooks through `python -m payments api` (one
  server per database), each for its own seeded payment, from 32 keep-alive connections, with
  bench/webhooks.py's lean client.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import asyncpg
import uvloop
from _common import Connection, median, progress, result_line, table, wait_healthy

from rtmn_shared.db import Pool, keep_session
from rtmn_shared.dedupe import DEFAULT_WINDOW
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.inbox import DEFAULT_INBOX
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.partitions import create_day, keep_partitions
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import ADMIN_DSN, Suite
from rtmn_shared.testing.processes import free_port


def _sibling(name: str) -> ModuleType:
    """bench/<name>.py as a module: _common takes bench/ off the import path (see there)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(name))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webhooks = _sibling("webhooks.py")  # its seeded payments, signed requests and lean client

PAYMENTS = SERVICES["payments"]
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "payments" / "migrations"
CONSUMERS = [f"svc.handler-{n}" for n in range(13)] + ["wallet.credit-cashback"]  # 14 a payment
CONSUMER = CONSUMERS[-1]
HISTORY_DAYS = DEFAULT_WINDOW.days
BATCH = 32
BATCH_WORKERS = 2
SINGLE_TASKS = 8
CLIENTS = 32
ROUNDS = 20


@dataclass
class Database:
    name: str
    suite: Suite
    pool: Pool | None = None
    port: int = 0
    server: asyncio.subprocess.Process | None = None
    requests: Iterator[bytes] = field(default_factory=lambda: iter(()))


# ------------------------------------------------------------------------ setting up ----


async def connect(db: Database) -> asyncpg.Connection[asyncpg.Record]:
    return await asyncpg.connect(
        db.suite.database_url, user=PAYMENTS.owner, server_settings={"search_path": "payments"}
    )


async def migrated(db: Database) -> None:
    conn = await connect(db)
    try:
        await migrate(conn, PAYMENTS.schema, discover(MIGRATIONS))
        await keep_partitions(conn, DEFAULT_WINDOW)
        await conn.execute("CREATE TABLE bench_effects (event_id UUID PRIMARY KEY)")
    finally:
        await conn.close()


async def fill(db: Database, table: str, rows: int, values: str) -> None:
    """`rows` rows of `table` spread over the past HISTORY_DAYS days, each in its partition."""
    conn = await connect(db)
    try:
        today = datetime.now(UTC).date()
        for back in range(1, HISTORY_DAYS + 1):
            day = today - timedelta(days=back)
            async with conn.transaction():
                name = await create_day(conn, table, day)
                await conn.execute(
                    f"INSERT INTO {name} SELECT {values} "  # noqa: S608 - ours, no input
                    "FROM generate_series(1, $2) AS g",
                    day,
                    rows // HISTORY_DAYS + (back <= rows % HISTORY_DAYS),
                )
    finally:
        await conn.close()


async def fill_history(db: Database, rows: int) -> float:
    started = time.perf_counter()
    consumers = "ARRAY[" + ", ".join(f"'{c}'" for c in CONSUMERS) + "]"
    await asyncio.gather(
        fill(db, "inbox", rows,
             f"({consumers})[1 + g % 14], gen_random_uuid(), "
             "$1::date + make_interval(secs => g % 86400), $1::date"),
        fill(db, "webhook_deliveries", rows,
             "'razorpay', 'evt_' || substr(md5($1::date::text || g), 1, 14), "
             "'payment.captured', $1::date + make_interval(secs => g % 86400), $1::date"),
    )  # fmt: skip
    took = time.perf_counter() - started
    await settle(db)
    return took


async def settle(db: Database) -> None:
    """As autovacuum and a checkpoint would leave the tables, so neither runs mid-measurement."""
    admin = await asyncpg.connect(ADMIN_DSN, database=db.suite.database)
    try:
        await admin.execute("VACUUM (ANALYZE) payments.inbox, payments.webhook_deliveries")
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()


async def sizes(db: Database) -> tuple[int, int]:
    """Rows and bytes (heap and indexes) of both dedupe tables."""
    admin = await asyncpg.connect(ADMIN_DSN, database=db.suite.database)
    try:
        row = await admin.fetchrow(
            """SELECT (SELECT count(*) FROM payments.inbox)
                          + (SELECT count(*) FROM payments.webhook_deliveries) AS rows,
                      (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
                       WHERE inhparent IN ('payments.inbox'::regclass,
                                           'payments.webhook_deliveries'::regclass)) AS bytes"""
        )
        assert row is not None
        return int(row["rows"]), int(row["bytes"] or 0)
    finally:
        await admin.close()


async def open_pool(db: Database) -> Pool:
    pool = await asyncpg.create_pool(
        db.suite.database_url,
        user=PAYMENTS.role,
        min_size=SINGLE_TASKS,
        max_size=SINGLE_TASKS,
        server_settings={"search_path": PAYMENTS.schema},
        reset=keep_session,
    )
    assert pool is not None
    return pool


async def start_server(db: Database, payments: int) -> None:
    db.requests = iter(await webhooks.seed(db.suite.database_url, payments))
    db.port = free_port()
    env = {
        **os.environ,
        **db.suite.environ(),
        "HTTP_PORT": str(db.port),
        "LOG_LEVEL": "WARNING",
        "RAZORPAY_WEBHOOK_SECRET": webhooks.SECRET,
        "DB_POOL_SIZE": "10",
    }
    db.server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "payments", "api", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    await wait_healthy(f"http://127.0.0.1:{db.port}", db.server, f"payments ({db.name})")


# ------------------------------------------------------------------------- measuring ----


def events(count: int) -> list[CloudEvent]:
    data = PaymentSuccess(
        payment_id="pay_1", order_id="o", order_number="R1", user_id="u", merchant_id="m",
        amount=100, currency="INR", gateway="razorpay", gateway_payment_id="p",
        paid_at=datetime.now(UTC),
    )  # fmt: skip
    return [CloudEvent.of(data, source="rtmn/bench") for _ in range(count)]


async def for_seconds(seconds: float, workers: int, step: Callable[[], Awaitable[int]]) -> float:
    """Events per second that `workers` tasks repeating `step` (which returns its events) do."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            done += await step()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - started)


async def consumer_batches(db: Database, seconds: float) -> float:
    assert db.pool is not None
    pool = db.pool

    async def step() -> int:
        batch = events(BATCH)
        async with pool.acquire() as conn, conn.transaction():
            fresh = await DEFAULT_INBOX.record_batch(conn, CONSUMER, batch)
            for event in batch:
                if event.id in fresh:  # the handler's effect, one statement each as it would
                    await conn.execute("INSERT INTO bench_effects VALUES ($1)", event.id)
        return BATCH

    return await for_seconds(seconds, BATCH_WORKERS, step)


async def consumer_singles(db: Database, seconds: float) -> float:
    assert db.pool is not None
    pool = db.pool

    async def step() -> int:
        [event] = events(1)
        async with pool.acquire() as conn, conn.transaction():
            if await DEFAULT_INBOX.record(conn, CONSUMER, event):
                await conn.execute("INSERT INTO bench_effects VALUES ($1)", event.id)
        return 1

    return await for_seconds(seconds, SINGLE_TASKS, step)


async def webhook_rate(db: Database, seconds: float) -> float:
    conns = [await Connection.open(db.port) for _ in range(CLIENTS)]
    try:
        count, took, _ = await webhooks.sustained(conns, db.requests, seconds)
    finally:
        for conn in conns:
            conn.close()
    return float(count / took)


PATHS: dict[str, Callable[[Database, float], Awaitable[float]]] = {
    f"consumer: batches of {BATCH}, {BATCH_WORKERS} workers": consumer_batches,
    f"consumer: one at a time, {SINGLE_TASKS} tasks": consumer_singles,
    f"webhooks through HTTP, {CLIENTS} clients": webhook_rate,
}


async def measure(
    empty: Database, full: Database, seconds: float, rounds: int
) -> dict[str, dict[str, list[float]]]:
    rates: dict[str, dict[str, list[float]]] = {p: {"empty": [], "full": []} for p in PATHS}
    for path, run in PATHS.items():
        await run(empty, 0.5)  # warm statement caches and connections on both sides
        await run(full, 0.5)
        for _ in range(rounds):
            # Side by side: whatever else the machine does then slows both alike.
            pair = await asyncio.gather(run(empty, seconds), run(full, seconds))
            for db, rate in zip((empty, full), pair, strict=True):
                rates[path][db.name].append(rate)
        by = rates[path]
        each = " ".join(f"{f / e:.2f}" for f, e in zip(by["full"], by["empty"], strict=True))
        progress(f"measured {path}; full/empty by round: {each}")
    return rates


# ------------------------------------------------------------------------------ main ----


async def main(quick: bool) -> None:
    rows = 1_000_000 if quick else 10_000_000
    seconds = 1.0 if quick else 1.5
    rounds = ROUNDS // 2 if quick else ROUNDS
    empty, full = Database("empty", Suite()), Database("full", Suite())
    created: list[Database] = []
    try:
        for db in (empty, full):
            await db.suite.create()
            created.append(db)
            await migrated(db)
        progress(f"filling {rows:,} rows into each of inbox and webhook_deliveries")
        fill_seconds = await fill_history(full, rows)
        await settle(empty)
        progress(f"filled in {fill_seconds:.0f} s")
        # Enough distinct payments for the fastest plausible webhook rate in every round.
        payments = int((rounds * seconds + 1) * 6_000)
        for db in (empty, full):
            db.pool = await open_pool(db)
            await start_server(db, payments)
        before = {db.name: await sizes(db) for db in (empty, full)}
        rates = await measure(empty, full, seconds, rounds)
    finally:
        for db in created:
            if db.pool is not None:
                await db.pool.close()
            if db.server is not None and db.server.returncode is None:
                db.server.terminate()
                await asyncio.wait_for(db.server.wait(), 10)
            await db.suite.destroy()
    report(rates, before, rows, fill_seconds)


def report(
    rates: dict[str, dict[str, list[float]]],
    before: dict[str, tuple[int, int]],
    rows: int,
    fill_seconds: float,
) -> None:
    lines = [("path", "tables", "rows in both", "median /s", "min-max /s", "full / empty")]
    ratios = {}
    for path, by in rates.items():
        ratios[path] = median([f / e for f, e in zip(by["full"], by["empty"], strict=True)])
        for name in ("empty", "full"):
            lines.append((
                path if name == "empty" else "",
                name,
                f"{before[name][0]:,}",
                f"{median(by[name]):,.0f}",
                f"{min(by[name]):,.0f}-{max(by[name]):,.0f}",
                f"{ratios[path]:.3f}" if name == "full" else "",
            ))  # fmt: skip
    print(table(lines))
    print(f"{len(rates[next(iter(rates))]['full'])} rounds a path, empty and full side by side; "
          "full / empty: the median of the rounds' ratios")  # fmt: skip
    print(
        f"history: {rows:,} rows into each table over {HISTORY_DAYS} daily partitions in "
        f"{fill_seconds:.0f} s ({before['full'][1] / 2**30:.2f} GiB with indexes); "
        f"the empty tables held {before['empty'][1] / 2**20:.1f} MiB; target full/empty ≥ 0.90"
    )
    worst = min(ratios, key=ratios.__getitem__)
    short = ("consumer_batches", "consumer_singles", "webhooks")
    print(
        result_line(
            "inbox_growth",
            f"rate with {rows:,} rows in inbox and webhook_deliveries vs empty ({worst})",
            median(rates[worst]["full"]),
            median(rates[worst]["empty"]),
            "events/s",
            paired_ratio=round(ratios[worst], 3),
            rows=rows,
            fill_seconds=round(fill_seconds),
            **{f"{s}_paired_ratio": round(ratios[p], 3) for s, p in zip(short, PATHS, strict=True)},
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 M rows, shorter rounds")
    args = parser.parse_args()
    uvloop.run(main(args.quick))
