"""GET /api/geo/geocode through HTTP against the Google Maps fake: cache, status mapping."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from geo_maps_fake import FakeGoogleMaps, FakePlace
from redis.asyncio import Redis

from rtmn_shared.testing.running import RunningService
from rtmn_shared.web.problems import PROBLEM_TYPE

BENGALURU = (12.9715987, 77.5945627)


def register(maps: FakeGoogleMaps, *, partial: bool = False) -> tuple[str, FakePlace]:
    tag = uuid.uuid4().hex[:10]
    address = f"{tag} MG Road, Bengaluru"
    place = maps.add_place(
        address,
        FakePlace(
            place_id=f"ChIJ{tag}",
            formatted_address=f"{tag}, Mahatma Gandhi Rd, Bengaluru, Karnataka 560001, India",
            lat=BENGALURU[0],
            lng=BENGALURU[1],
            partial_match=partial,
        ),
    )
    return address, place


async def get(svc: RunningService, address: str, headers: dict[str, str]) -> Any:
    return await svc.client.get("/api/geo/geocode", params={"address": address}, headers=headers)


async def test_second_call_is_served_from_the_cache(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, place = register(maps, partial=True)

    first = await get(geo, address, user)
    assert first.status == 200
    body = await first.json()
    assert body["place_id"] == place.place_id
    assert body["location"] == {"lat": place.lat, "lng": place.lng}
    assert body["partial_match"] is True
    assert body["source"] == "provider"
    # Case, spacing and punctuation do not make a new address.
    again = await get(geo, "  " + address.upper().replace(",", " ;") + ". ", user)
    assert again.status == 200
    assert (await again.json())["source"] == "cache"

    calls = maps.geocode_requests()
    assert len(calls) == 1
    assert calls[0]["region"] == "in"
    assert calls[0]["components"] == "country:IN"


async def test_twenty_concurrent_misses_make_one_provider_call(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, place = register(maps)
    maps.delay_next(1, 0.3)  # all twenty arrive while the first lookup is in flight

    responses = await asyncio.gather(*(get(geo, address, user) for _ in range(20)))

    assert [r.status for r in responses] == [200] * 20
    bodies = [await r.json() for r in responses]
    assert {b["place_id"] for b in bodies} == {place.place_id}
    assert len(maps.geocode_requests()) == 1


async def test_replicas_sharing_redis_make_one_provider_call(
    geo_service: Any, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    maps.delay_next(1, 0.3)
    async with geo_service(maps) as one, geo_service(maps) as two:
        responses = await asyncio.gather(
            *(get(replica, address, user) for replica in (one, two) for _ in range(5))
        )
    assert [r.status for r in responses] == [200] * 10
    assert len(maps.geocode_requests()) == 1


async def test_zero_results_is_404_and_cached_briefly(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str], redis: Redis
) -> None:
    address = f"nowhere {uuid.uuid4().hex}"
    for _ in range(2):
        response = await get(geo, address, user)
        assert response.status == 404
        assert response.content_type == PROBLEM_TYPE
    assert len(maps.geocode_requests()) == 1
    keys = [k async for k in redis.scan_iter("geo:gc:*")]
    ttls = [await redis.ttl(k) for k in keys]
    assert any(0 < ttl <= 600 for ttl in ttls)


@pytest.mark.parametrize("status", ["OVER_QUERY_LIMIT", "UNKNOWN_ERROR"])
async def test_transient_statuses_are_retried(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str], status: str
) -> None:
    address, place = register(maps)
    maps.answer_next(status, n=2)

    response = await get(geo, address, user)

    assert response.status == 200
    assert (await response.json())["place_id"] == place.place_id
    assert len(maps.geocode_requests()) == 3


@pytest.mark.parametrize("status", ["OVER_QUERY_LIMIT", "UNKNOWN_ERROR"])
async def test_transient_statuses_past_the_deadline_are_503(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str], status: str
) -> None:
    address, _ = register(maps)
    maps.answer_next(status, n=1000)

    started = asyncio.get_running_loop().time()
    response = await get(geo, address, user)
    elapsed = asyncio.get_running_loop().time() - started

    assert response.status == 503
    assert response.headers["Retry-After"]
    assert 2 <= len(maps.geocode_requests()) <= 5  # retried, and stopped by the breaker
    assert elapsed < 2.0  # the 1 s deadline, not the SDK's 60 s default


@pytest.mark.parametrize(
    ("status", "http_status"),
    [("REQUEST_DENIED", 502), ("OVER_DAILY_LIMIT", 502), ("INVALID_REQUEST", 400)],
)
async def test_permanent_statuses_are_never_retried(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str], status: str, http_status: int
) -> None:
    address, _ = register(maps)
    maps.answer_next(status, message="provider-internal-detail")

    response = await get(geo, address, user)

    assert response.status == http_status
    problem = await response.json()
    assert problem["status"] == http_status
    assert "provider-internal-detail" not in str(problem)
    assert len(maps.geocode_requests()) == 1


async def test_daily_quota_reported_as_over_query_limit_is_not_retried(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    maps.answer_next("OVER_QUERY_LIMIT", message="You have exceeded your daily request quota.")

    response = await get(geo, address, user)

    assert response.status == 502
    assert len(maps.geocode_requests()) == 1


async def test_a_wrong_api_key_is_502(
    geo_service: Any, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    async with geo_service(maps, google_maps_api_key="AIzaNotTheRightKey") as svc:
        response = await get(svc, address, user)
    assert response.status == 502


async def test_http_5xx_and_malformed_replies_end_as_503(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    maps.fail_next(1000, status=500)
    assert (await get(geo, address, user)).status == 503
    maps.reset()
    maps.malformed_next(1000)
    other, _ = register(maps)
    assert (await get(geo, other, user)).status == 503


async def test_expired_coordinates_are_refreshed_through_the_stored_place_id(
    geo: RunningService, maps: FakeGoogleMaps, user: dict[str, str], redis: Redis
) -> None:
    address, place = register(maps)
    assert (await get(geo, address, user)).status == 200
    ttls = [await redis.ttl(k) async for k in redis.scan_iter("geo:gc:*")]
    assert max(ttls) <= 30 * 24 * 3600
    async for key in redis.scan_iter("geo:gc:*"):
        await redis.delete(key)  # as if 30 days had passed

    response = await get(geo, address, user)

    assert response.status == 200
    assert (await response.json())["place_id"] == place.place_id
    second = maps.geocode_requests()[1]
    assert second["place_id"] == place.place_id
    assert "address" not in second
    stored = await geo.pool.fetchrow("SELECT * FROM places WHERE place_id = $1", place.place_id)
    assert stored is not None
    columns = list(stored.keys())
    assert "lat" not in columns  # coordinates are never stored in PostgreSQL


async def test_misses_are_rate_limited_per_caller(
    geo_service: Any, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    async with geo_service(maps, geocode_misses_per_minute=2) as svc:
        statuses = [(await get(svc, f"nowhere {uuid.uuid4().hex}", user)).status for _ in range(3)]
    assert statuses == [404, 404, 429]


async def test_geocode_needs_a_caller_and_an_address(
    geo: RunningService, user: dict[str, str]
) -> None:
    assert (await geo.client.get("/api/geo/geocode", params={"address": "x"})).status == 401
    assert (await geo.client.get("/api/geo/geocode", headers=user)).status == 400
    response = await get(geo, " ,,, ", user)
    assert response.status == 400


async def test_sandbox_answers_only_from_the_cache(
    geo_service: Any, maps: FakeGoogleMaps, user: dict[str, str]
) -> None:
    address, place = register(maps)
    async with geo_service(maps) as live:
        assert (await get(live, address, user)).status == 200  # now cached
    async with geo_service(None) as sandbox:
        cached = await get(sandbox, address, user)
        unknown = await get(sandbox, f"somewhere new {uuid.uuid4().hex}", user)
        assert cached.status == 200
        assert (await cached.json())["place_id"] == place.place_id
        assert unknown.status == 503
        assert (await unknown.json())["detail"] == "geocoding provider not configured"
        ready = await (await sandbox.client.get("/readyz")).json()
    assert ready["providers"] == {"google_maps": "sandbox"}
    assert len(maps.geocode_requests()) == 1
