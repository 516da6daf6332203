"""OTP send+verify pairs per second through HTTP, beside the raw Redis Lua calls they rest on.

    python bench/otp_bench.py [--quick]

The service runs as its own process (`python -m otp api` would, plus one change: a bench SMS
sender that hands each code to this script through Redis instead of texting it, since the
sandbox never reveals codes). Each pair is `POST /api/otp/send` for a fresh phone, reading the
code, and `POST /api/otp/verify`, which also writes the otp.verified outbox row. Caps are raised
by settings so that only the work is measured, never a 429.

Baseline (same Redis, same run, same concurrency): the two Lua scripts a pair costs (send
admission, then verification), called straight from a Redis client with no HTTP, no SMS, no
token and no database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg
import uvloop
from _common import percentile, result_line, table, wait_healthy
from aiohttp import web
from redis.asyncio import Redis

from otp.app import build_app
from otp.domain import Hasher, new_code, parse_phone
from otp.providers import Receipt, Sms
from otp.settings import OtpSettings
from otp.store import CodeStore, Keys, Rules
from rtmn_shared.cli.token import generate_keypair
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import REDIS_BASE, Suite
from rtmn_shared.testing.processes import free_port

OTP = SERVICES["otp"]
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "otp" / "migrations"
REDIS_URL = f"{REDIS_BASE}/13"  # its own database: the bench flushes it when done
HASH_KEY = "bench-hash-key-" + "b" * 32
CODES = "bench:otp:code:"  # where the bench sender leaves each code for this script
WORKERS = 32
RAISED = {
    "OTP_HOURLY_CAP": "1000000",
    "OTP_DAILY_CAP": "1000000",
    "OTP_IP_HOURLY_CAP": "1000000000",
}


class BenchSender:
    """Stands in for the SMS provider: the code goes to Redis for the bench client to read."""

    name = "bench"
    channels = frozenset({"sms"})

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def send(self, sms: Sms) -> Receipt:
        await self._redis.set(CODES + sms.phone.e164, sms.code, ex=60)
        return Receipt(self.name, "bench")


async def serve() -> None:
    """The server process: the service's own app, its SMS sender swapped for the bench one."""
    settings = OtpSettings()
    async with AsyncExitStack() as stack:
        codes = Redis.from_url(REDIS_URL)
        stack.push_async_callback(codes.aclose)
        app = await build_app(settings, stack, sender=BenchSender(codes))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", settings.http_port, backlog=1024).start()
        await asyncio.Event().wait()


def phones() -> Callable[[], str]:
    """Distinct valid Indian mobile numbers, different in every run."""
    base = int(time.time() * 1000) % 10**7 * 10
    counter = iter(range(10**9))
    return lambda: f"+9197{(base + next(counter)) % 10**8:08d}"


async def run_for(
    seconds: float, pair: Callable[[], Awaitable[None]]
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await pair()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return len(latencies), time.perf_counter() - started, latencies


async def http_pairs(base: str, redis: Redis, seconds: float) -> tuple[int, float, list[float]]:
    next_phone = phones()
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def pair() -> None:
            phone = next_phone()
            async with http.post("/api/otp/send", json={"phone": phone}) as sent:
                if sent.status != 202:
                    raise RuntimeError(f"send answered {sent.status}: {await sent.text()}")
            code = await redis.get(CODES + phone)
            if not isinstance(code, bytes):
                raise RuntimeError("the bench sender left no code")
            body = {"phone": phone, "otp": code.decode()}
            async with http.post("/api/otp/verify", json=body) as verified:
                if verified.status != 200:
                    raise RuntimeError(f"verify answered {verified.status}")
                await verified.read()

        await run_for(0.5, pair)  # warm up connections and script caches
        return await run_for(seconds, pair)


async def lua_pairs(redis: Redis, seconds: float) -> tuple[int, float, list[float]]:
    rules = Rules(300_000, 30_000, 3, 10**6, 10**6, 10**9)
    store, hasher = CodeStore(redis, rules), Hasher(HASH_KEY.encode())
    next_phone = phones()
    regions = frozenset({"IN"})
    client = hasher.client("127.0.0.1")

    async def pair() -> None:
        phone = parse_phone(next_phone(), regions)
        keys = Keys.of(hasher.phone(phone), "login")
        digest = hasher.code("login", phone, new_code())
        await store.admit(keys, client, digest)
        if (await store.check(keys, digest)).verdict != "ok":
            raise RuntimeError("the baseline's verification failed")

    await run_for(0.5, pair)
    return await run_for(seconds, pair)


async def main(quick: bool) -> None:
    seconds = 3.0 if quick else 10.0
    suite = Suite()
    await suite.create()
    redis = Redis.from_url(REDIS_URL)
    server: asyncio.subprocess.Process | None = None
    try:
        await redis.flushdb()
        conn = await asyncpg.connect(suite.database_url, user=OTP.owner)
        await migrate(conn, OTP.schema, discover(MIGRATIONS))
        await conn.close()

        port = free_port()
        private, public = generate_keypair()
        env = {
            **os.environ,
            **suite.environ(),
            **RAISED,
            "REDIS_URL": REDIS_URL,
            "HTTP_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "OTP_HASH_KEY": HASH_KEY,
            "OTP_SIGNING_KEY": private,
            "OTP_SIGNING_PUBLIC_KEY": public,
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, server, "OTP")

        lua_n, lua_s, lua_lat = await lua_pairs(redis, seconds)
        http_n, http_s, http_lat = await http_pairs(base, redis, seconds)
        lua_rate, http_rate = lua_n / lua_s, http_n / http_s
        rows = [("path", "pairs", "seconds", "pairs/s", "p50 ms", "p99 ms")]
        for name, n, took, lat in (
            ("raw Lua (admit + verify)", lua_n, lua_s, lua_lat),
            ("HTTP send + verify", http_n, http_s, http_lat),
        ):
            rows.append((name, str(n), f"{took:.1f}", f"{n / took:.0f}",
                         f"{percentile(lat, 50):.2f}", f"{percentile(lat, 99):.2f}"))  # fmt: skip
        print(table(rows))
        print(f"{WORKERS} concurrent clients; HTTP reaches {http_rate / lua_rate:.1%} of raw Lua")
        print(
            result_line(
                "otp",
                "send+verify pairs per second through HTTP",
                http_rate,
                lua_rate,
                "pairs/s",
                p50_ms=percentile(http_lat, 50),
                p99_ms=percentile(http_lat, 99),
            )
        )
    finally:
        if server is not None:
            server.terminate()
            await asyncio.wait_for(server.wait(), 10)
        await redis.flushdb()
        await redis.aclose()
        await suite.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per measurement instead of 10")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    uvloop.run(serve() if args.serve else main(args.quick))
