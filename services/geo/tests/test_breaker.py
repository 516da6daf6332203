"""The circuit breaker, on a clock the test moves: it opens, waits, probes and recovers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from geo_maps_fake import API_KEY, GeoMapsFake
from redis.asyncio import Redis

from geo.breaker import CircuitBreaker, CircuitOpen, State
from geo.cache import GeocodeCache
from geo.geocoding import Geocoding, RetryPolicy, Unavailable
from geo.providers.google import GoogleGeocoder
from rtmn_fakes.google_maps import default_result

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_half_opens_after_the_wait() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == pytest.approx(30)

    clock.now += 30
    assert breaker.state is State.HALF_OPEN
    breaker.before_call()  # the one probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # no second probe while the first is out
    breaker.record_success()
    assert breaker.state is State.CLOSED
    breaker.before_call()


def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=10, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.now += 10
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is State.OPEN
    clock.now += 9
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 1
    assert breaker.state is State.HALF_OPEN


@pytest.fixture
async def geocoding_on_a_clock(
    service_pool: Any, redis: Redis, maps: GeoMapsFake
) -> AsyncIterator[tuple[Geocoding, CircuitBreaker, Clock]]:
    pool = await service_pool("geo", MIGRATIONS)
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=30, clock=clock)
    with ThreadPoolExecutor(2) as executor:
        google = GoogleGeocoder(
            api_key=API_KEY, executor=executor, base_url=maps.url, retry_timeout=0.2
        )
        geocoding = Geocoding(
            geocoder=google,
            cache=GeocodeCache(redis),
            pool=pool,
            breaker=breaker,
            retry=RetryPolicy(deadline_s=2.0, first_delay_s=0.01),
        )
        yield geocoding, breaker, clock
        google.close()


async def test_the_breaker_stops_provider_calls_and_recovers(
    geocoding_on_a_clock: tuple[Geocoding, CircuitBreaker, Clock], maps: GeoMapsFake
) -> None:
    geocoding, breaker, clock = geocoding_on_a_clock
    address = f"{uuid.uuid4().hex[:8]} 100 Feet Road, Indiranagar"
    key = Geocoding.key(address)
    maps.set_geocode(address, "UNKNOWN_ERROR")

    with pytest.raises(Unavailable):
        await geocoding.resolve(key)
    assert breaker.state is State.OPEN
    assert len(maps.calls()) == 3

    # Open: no call reaches the provider, and the caller learns when to come back.
    with pytest.raises(Unavailable) as refused:
        await geocoding.resolve(key)
    assert refused.value.retry_after == pytest.approx(30)
    assert len(maps.calls()) == 3

    # The provider heals; after the wait one probe goes through and closes the circuit.
    maps.reset()
    clock.now += 30
    answer = await geocoding.resolve(key)
    assert answer.place.place_id == default_result(address)["place_id"]
    assert breaker.state is State.CLOSED
    assert len(maps.calls()) == 1
