"""Nearby merchants over 1,000,000 points (PostGIS GiST + KNN) beside a sequential-scan haversine,
and the cached geocode path through HTTP.

    python bench/geo_bench.py [--quick]      (--quick: 100,000 merchants, fewer queries)

Runs in a throwaway database (rtmn_shared.testing.infra.Suite) with the geo service's own
migrations. Merchants are clustered around Indian cities (most) plus a uniform spread over
India; queries are 5 km / 20 results around random city points, as a shopper would ask.
Baseline (same data, same run): the same question answered by computing haversine for every
row in SQL (a sequential scan), which is what the service would do without PostGIS.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import time
import uuid
from contextlib import AsyncExitStack

import aiohttp
import asyncpg
import uvloop
from _common import percentile, result_line, table
from aiohttp import web
from redis.asyncio import Redis

from geo.app import SERVICE
from geo.cache import GeocodeCache
from geo.domain import LatLng, Place, normalise_address
from geo.settings import Settings
from geo.store import nearby
from rtmn_shared.service import run_migrations
from rtmn_shared.testing.infra import REDIS_BASE, Suite

CITIES = [  # (lat, lng, weight): where most merchants are
    (19.0760, 72.8777, 12), (28.6139, 77.2090, 12), (12.9716, 77.5946, 10),
    (17.3850, 78.4867, 7), (13.0827, 80.2707, 7), (22.5726, 88.3639, 7),
    (18.5204, 73.8567, 5), (23.0225, 72.5714, 5), (26.9124, 75.7873, 3),
    (26.8467, 80.9462, 3), (21.1458, 79.0882, 2), (22.7196, 75.8577, 2),
    (11.0168, 76.9558, 2), (9.9312, 76.2673, 2), (30.7333, 76.7794, 2),
]  # fmt: skip
RADIUS_KM = 5.0
LIMIT = 20
BASELINE_SQL = """
    SELECT id, name, lat, lng, d AS distance_km FROM (
        SELECT id, name, lat, lng,
               2 * 6371.0088 * asin(sqrt(
                   power(sin(radians(lat - $1) / 2), 2)
                   + cos(radians($1)) * cos(radians(lat)) * power(sin(radians(lng - $2) / 2), 2)
               )) AS d
          FROM merchants) AS s
     WHERE d <= $3 ORDER BY d LIMIT $4"""


_CUMULATIVE = list(itertools.accumulate(c[2] for c in CITIES))


def city_points(rng: random.Random, spread: float, k: int) -> list[tuple[float, float]]:
    cities = rng.choices(CITIES, cum_weights=_CUMULATIVE, k=k)
    return [(lat + rng.gauss(0, spread), lng + rng.gauss(0, spread)) for lat, lng, _ in cities]


def merchants(n: int, rng: random.Random) -> list[tuple[str, str, float, float]]:
    clustered = int(n * 0.8)
    points = city_points(rng, 0.12, clustered)
    points += [(rng.uniform(8.0, 30.0), rng.uniform(69.0, 89.0)) for _ in range(n - clustered)]
    return [
        (f"m{i}", f"merchant {i}", round(lat, 6), round(lng, 6))
        for i, (lat, lng) in enumerate(points)
    ]


async def load(pool: asyncpg.Pool, n: int) -> dict[str, float]:
    rng = random.Random(42)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rows = merchants(n, rng)
    timings["generate"] = time.perf_counter() - started
    async with pool.acquire() as conn:
        # Bulk load without the index, then build it once: far faster than n index inserts.
        await conn.execute("DROP INDEX merchants_location")
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "merchants", records=rows, columns=["id", "name", "lat", "lng"]
        )
        timings["copy"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("CREATE INDEX merchants_location ON merchants USING gist (location)")
        timings["index"] = time.perf_counter() - started
        await conn.execute("ANALYZE merchants")
    return timings


async def time_queries(
    pool: asyncpg.Pool, points: list[LatLng], baseline: bool
) -> tuple[list[float], list[list[str]]]:
    latencies, answers = [], []
    async with pool.acquire() as conn:
        for at in points:
            started = time.perf_counter()
            if baseline:
                rows = await conn.fetch(BASELINE_SQL, at.lat, at.lng, RADIUS_KM, LIMIT)
                ids = [r["id"] for r in rows]
            else:
                ids = [m.id for m in await nearby(conn, at, RADIUS_KM, LIMIT)]
            latencies.append((time.perf_counter() - started) * 1000)
            answers.append(ids)
    return latencies, answers


async def http_latencies(
    session: aiohttp.ClientSession, requests: list[tuple[str, dict[str, str]]], concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    queue = list(reversed(requests))

    async def worker() -> None:
        nonlocal failures
        while queue:
            path, params = queue.pop()
            started = time.perf_counter()
            async with session.get(path, params=params) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


async def main(quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    index_queries, baseline_queries = (500, 10) if quick else (2000, 12)
    geocode_requests = 2000 if quick else 3000
    suite = Suite()
    await suite.create()
    redis_url = f"{REDIS_BASE}/{os.environ.get('RTMN_BENCH_REDIS_DB', '14')}"
    settings = Settings(
        database_url=suite.database_url,
        redis_url=redis_url,
        amqp_url=suite.amqp_url,
        jwt_public_key=suite.public_key,
        db_pool_size=4,
        # The sandbox: the cached path never reaches a provider; short TTLs tidy up after us.
        google_maps_api_key=None,
        geocode_coordinate_ttl_s=900,
    )
    try:
        await run_migrations(SERVICE, settings)
        pool = await asyncpg.create_pool(
            suite.database_url,
            user=SERVICE.info.owner,  # the bulk load drops and builds an index: the owner's work
            min_size=1,
            max_size=2,
            server_settings={"search_path": SERVICE.info.schema},
        )
        assert pool is not None
        async with pool:
            print(f"loading {n:,} merchants ...", flush=True)
            load_timings = await load(pool, n)
            rng = random.Random(7)
            points = [LatLng(*p) for p in city_points(rng, 0.08, index_queries)]
            await time_queries(pool, points[:50], baseline=False)  # warm the cache
            knn, knn_answers = await time_queries(pool, points, baseline=False)
            seq, seq_answers = await time_queries(pool, points[:baseline_queries], baseline=True)
            agree = sum(set(a) == set(b) for a, b in zip(knn_answers, seq_answers, strict=False))
        http_rows = await bench_http(settings, suite, points, geocode_requests)
    finally:
        await suite.destroy()

    rows = [
        ("what", "n", "p50 ms", "p99 ms", "mean ms"),
        *(
            (name, str(len(values)), f"{percentile(values, 50):.2f}",
             f"{percentile(values, 99):.2f}", f"{sum(values) / len(values):.2f}")
            for name, values in [
                ("nearby: PostGIS GiST, ST_DWithin + <-> (store)", knn),
                ("baseline: haversine over every row (seq scan)", seq),
                *http_rows.items(),
            ]
        ),
    ]  # fmt: skip
    print()
    print(
        f"{n:,} merchants; load: generate {load_timings['generate']:.1f}s, "
        f"COPY {load_timings['copy']:.1f}s, GiST index {load_timings['index']:.1f}s"
    )
    print(f"queries: radius {RADIUS_KM} km, limit {LIMIT}; "
          f"answers equal to the baseline's: {agree}/{len(seq_answers)}")  # fmt: skip
    print(table(rows))
    geocode = http_rows["geocode, cached (HTTP, 4 concurrent)"]
    print(
        result_line(
            "geo",
            "nearby_p50_ms",
            percentile(knn, 50),
            percentile(seq, 50),
            "ms",
            p50_ms=percentile(knn, 50),
            p99_ms=percentile(knn, 99),
            baseline_p99_ms=percentile(seq, 99),
            merchants=n,
            geocode_cached_p50_ms=percentile(geocode, 50),
            geocode_cached_p99_ms=percentile(geocode, 99),
        )
    )


async def bench_http(
    settings: Settings, suite: Suite, points: list[LatLng], n: int
) -> dict[str, list[float]]:
    """The service's own app on a local port; cached geocodes and nearby through HTTP."""
    redis = Redis.from_url(str(settings.redis_url))
    cache = GeocodeCache(redis, coordinate_ttl_s=900)
    addresses = [f"{i} bench road {uuid.uuid4().hex[:6]}, Bengaluru" for i in range(200)]
    for i, address in enumerate(addresses):
        place = Place(f"ChIJbench{i}", address, LatLng(12.97, 77.59), partial_match=False)
        await cache.put(normalise_address(address), place)
    await redis.aclose()

    results: dict[str, list[float]] = {}
    async with AsyncExitStack() as stack:
        app = await SERVICE.build_app(settings, stack)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        headers = suite.bearer("bench-user")
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as session:
            geocodes = [("/api/geo/geocode", {"address": addresses[i % 200]}) for i in range(n)]
            await http_latencies(session, geocodes[:200], 4)  # warm up
            latencies, failures = await http_latencies(session, geocodes, 4)
            if failures:
                raise SystemExit(f"{failures} cached geocodes failed")
            results["geocode, cached (HTTP, 4 concurrent)"] = latencies
            searches = [
                ("/api/geo/nearby", {"lat": str(p.lat), "lng": str(p.lng), "radius_km": "5"})
                for p in points[: n // 2]
            ]
            latencies, failures = await http_latencies(session, searches, 4)
            if failures:
                raise SystemExit(f"{failures} nearby searches failed")
            results["nearby (HTTP, 4 concurrent)"] = latencies
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 merchants, fewer queries")
    args = parser.parse_args()
    uvloop.run(main(args.quick))
