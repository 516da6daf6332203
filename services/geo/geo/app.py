"""Composition root: settings -> pool, Redis, geocoder, cache, breaker -> routes -> app."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from geo.api import build_routes
from geo.breaker import CircuitBreaker
from geo.cache import GeocodeCache
from geo.geocoding import Geocoding, RetryPolicy
from geo.metrics import watch
from geo.providers.base import Geocoder
from geo.providers.google import GoogleGeocoder
from geo.providers.sandbox import SandboxGeocoder
from geo.settings import Settings
from rtmn_shared.service import Service, open_pool, open_redis
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.ratelimit import RateLimiter

NAME = "geo"


def build_geocoder(settings: Settings, stack: AsyncExitStack) -> Geocoder:
    if settings.google_maps_api_key is None:
        return SandboxGeocoder()
    # Bounded: a slow provider ties up these threads, never the event loop or unbounded others.
    executor = ThreadPoolExecutor(settings.geocode_workers, thread_name_prefix="geocode")
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    google = GoogleGeocoder(
        api_key=settings.google_maps_api_key.get_secret_value(),
        executor=executor,
        base_url=settings.google_maps_base_url,
        timeout=settings.geocode_timeout_s,
        retry_timeout=settings.geocode_sdk_retry_timeout_s,
        queries_per_second=settings.google_maps_qps,
    )
    stack.callback(google.close)
    return google


async def build_app(settings: Settings, stack: AsyncExitStack) -> web.Application:
    pool = await open_pool(SERVICE.info, settings, stack)
    redis = await open_redis(settings, stack)
    geocoder = build_geocoder(settings, stack)
    breaker = CircuitBreaker(
        failure_threshold=settings.geocode_breaker_failures,
        reset_after=settings.geocode_breaker_reset_s,
    )
    watch(breaker, "google_maps")
    geocoding = Geocoding(
        geocoder=geocoder,
        cache=GeocodeCache(
            redis,
            coordinate_ttl_s=settings.geocode_coordinate_ttl_s,
            negative_ttl_s=settings.geocode_negative_ttl_s,
        ),
        pool=pool,
        breaker=breaker,
        retry=RetryPolicy(
            deadline_s=settings.geocode_deadline_s,
            first_delay_s=settings.geocode_retry_first_delay_s,
        ),
    )
    routes = build_routes(
        geocoding=geocoding,
        pool=pool,
        limiter=RateLimiter(redis, NAME),
        misses_per_minute=settings.geocode_misses_per_minute,
    )
    return create_app(
        service=NAME,
        routes=routes,
        verifier=TokenVerifier.from_settings(settings),
        # No broker check: geo neither publishes nor consumes events.
        readiness=Readiness(pool=pool, redis=redis, providers={"google_maps": geocoder.mode}),
        max_body_bytes=settings.max_body_bytes,
    )


SERVICE = Service(
    NAME,
    Settings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
)
