"""GET /api/geo/geocode through HTTP against the Google Maps fake: cache, status mapping."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from geo_maps_fake import GeoMapsFake
from redis.asyncio import Redis

from geo.domain import normalise_address
from rtmn_fakes.google_maps import default_result, status_body
from rtmn_fakes.payloads import load
from rtmn_shared.testing.running import RunningService
from rtmn_shared.web.problems import PROBLEM_TYPE


def an_address() -> str:
    return f"{uuid.uuid4().hex[:10]} MG Road, Bengaluru"


def register(maps: GeoMapsFake, *, partial: bool = False) -> tuple[str, dict[str, Any]]:
    """An address the fake geocodes OK, and the result it will give."""
    address = an_address()
    result = default_result(address)
    if partial:
        result["partial_match"] = True
    maps.set_geocode(address, "OK", result)
    return address, result


async def get(svc: RunningService, address: str, headers: dict[str, str]) -> Any:
    return await svc.client.get("/api/geo/geocode", params={"address": address}, headers=headers)


async def test_second_call_is_served_from_the_cache(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    address, result = register(maps, partial=True)

    first = await get(geo, address, user)
    assert first.status == 200
    body = await first.json()
    assert body["place_id"] == result["place_id"]
    assert body["location"] == result["geometry"]["location"]
    assert body["formatted_address"] == result["formatted_address"]
    assert body["partial_match"] is True
    assert body["source"] == "provider"
    # Case, spacing and punctuation do not make a new address.
    again = await get(geo, "  " + address.upper().replace(",", " ;") + ". ", user)
    assert again.status == 200
    assert (await again.json())["source"] == "cache"

    calls = maps.calls()
    assert len(calls) == 1
    assert calls[0]["region"] == "in"
    assert calls[0]["components"] == "country:IN"


async def test_the_provider_is_asked_with_the_form_the_answer_is_cached_under(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    # A first caller's spelling must not choose what every later spelling is answered with.
    base = an_address()
    spelling = f"  {base.upper()} ;; (see map: Bangalore!) "

    assert (await get(geo, spelling, user)).status == 200

    [call] = maps.calls()
    assert call["address"] == normalise_address(spelling)
    assert call["address"] == f"{base.lower().replace(',', '')} see map bangalore"


async def test_twenty_concurrent_misses_make_one_provider_call(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    address, result = register(maps)
    maps.delay_next(1, 0.3)  # all twenty arrive while the first lookup is in flight

    responses = await asyncio.gather(*(get(geo, address, user) for _ in range(20)))

    assert [r.status for r in responses] == [200] * 20
    bodies = [await r.json() for r in responses]
    assert {b["place_id"] for b in bodies} == {result["place_id"]}
    assert len(maps.calls()) == 1


async def test_replicas_sharing_redis_make_one_provider_call(
    geo_service: Any, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    maps.delay_next(1, 0.3)
    async with geo_service(maps) as one, geo_service(maps) as two:
        responses = await asyncio.gather(
            *(get(replica, address, user) for replica in (one, two) for _ in range(5))
        )
        assert [r.status for r in responses] == [200] * 10
    assert len(maps.calls()) == 1


async def test_the_event_loop_keeps_serving_while_the_provider_is_slow(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    address, _ = register(maps)
    maps.delay_next(1, 0.5)
    lookup = asyncio.ensure_future(get(geo, address, user))
    await maps.wait_for_requests_async(1, timeout=5)  # the SDK call is in flight

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await geo.client.get("/healthz")).status == 200
    assert loop.time() - started < 0.2
    assert not lookup.done()
    assert (await lookup).status == 200


async def test_zero_results_is_404_and_cached_briefly(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], redis: Redis
) -> None:
    address = an_address()
    maps.set_geocode(address, "ZERO_RESULTS")
    for _ in range(2):
        response = await get(geo, address, user)
        assert response.status == 404
        assert response.content_type == PROBLEM_TYPE
    assert len(maps.calls()) == 1
    ttls = [await redis.ttl(key) async for key in redis.scan_iter("geo:gc:*")]
    assert any(0 < ttl <= 600 for ttl in ttls)


@pytest.mark.parametrize("status", ["OVER_QUERY_LIMIT", "UNKNOWN_ERROR"])
async def test_transient_statuses_are_retried(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], status: Any
) -> None:
    address, result = register(maps)
    maps.set_geocode(address, status, times=2)

    response = await get(geo, address, user)

    assert response.status == 200
    assert (await response.json())["place_id"] == result["place_id"]
    assert len(maps.calls()) == 3


@pytest.mark.parametrize("status", ["OVER_QUERY_LIMIT", "UNKNOWN_ERROR"])
async def test_transient_statuses_past_the_deadline_are_503(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], status: Any
) -> None:
    address = an_address()
    maps.set_geocode(address, status)

    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await get(geo, address, user)
    elapsed = loop.time() - started

    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert 2 <= len(maps.calls()) <= 5  # retried, then stopped by the deadline or the breaker
    assert elapsed < 2.0  # the 1 s deadline, not the SDK's 60 s default


@pytest.mark.parametrize(
    ("status", "http_status"),
    [("REQUEST_DENIED", 502), ("OVER_DAILY_LIMIT", 502), ("INVALID_REQUEST", 400)],
)
async def test_permanent_statuses_are_never_retried(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], status: Any, http_status: int
) -> None:
    address = an_address()
    maps.set_geocode(address, status)

    response = await get(geo, address, user)

    assert response.status == http_status
    problem = await response.json()
    assert problem["status"] == http_status
    assert status_body(status)["error_message"].strip() not in str(problem)  # nothing leaks
    assert len(maps.calls()) == 1


async def test_daily_quota_reported_as_over_query_limit_is_not_retried(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    daily = load("google_maps", "over_query_limit.daily.distance_matrix.sdk_test.json")
    assert daily["status"] == "OVER_QUERY_LIMIT"
    maps.fail_next(1, status=200, body=daily)

    response = await get(geo, an_address(), user)

    assert response.status == 502
    assert len(maps.calls()) == 1


async def test_a_wrong_api_key_is_502(
    geo_service: Any, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    async with geo_service(maps, google_maps_api_key="AIzaNotTheRightKey") as svc:
        response = await get(svc, an_address(), user)
        assert response.status == 502


async def test_http_5xx_and_malformed_replies_end_as_503(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    maps.fail_next(1000, status=500)
    assert (await get(geo, an_address(), user)).status == 503
    maps.reset()
    maps.malformed_next(1000)
    assert (await get(geo, an_address(), user)).status == 503


async def test_expired_coordinates_are_refreshed_through_the_stored_place_id(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], redis: Redis
) -> None:
    address, result = register(maps, partial=True)
    assert (await get(geo, address, user)).status == 200
    ttls = [await redis.ttl(key) async for key in redis.scan_iter("geo:gc:*")]
    assert max(ttls) <= 30 * 24 * 3600
    async for key in redis.scan_iter("geo:gc:*"):
        await redis.delete(key)  # as if the 30 days had passed

    response = await get(geo, address, user)

    assert response.status == 200
    body = await response.json()
    assert body["place_id"] == result["place_id"]
    assert body["partial_match"] is True  # kept from the first lookup
    second = maps.calls()[1]
    assert second["place_id"] == result["place_id"]
    assert "address" not in second
    stored = await geo.pool.fetchrow("SELECT * FROM places WHERE place_id = $1", result["place_id"])
    assert stored is not None
    columns = list(stored.keys())
    assert "lat" not in columns  # coordinates are never stored in PostgreSQL


async def test_a_stale_place_id_falls_back_to_the_address(
    geo: RunningService, maps: GeoMapsFake, user: dict[str, str], redis: Redis
) -> None:
    address, result = register(maps)
    assert (await get(geo, address, user)).status == 200
    await geo.pool.execute(
        "UPDATE places SET place_id = 'ChIJgone' WHERE place_id = $1", result["place_id"]
    )
    async for key in redis.scan_iter("geo:gc:*"):
        await redis.delete(key)

    response = await get(geo, address, user)

    assert response.status == 200
    assert (await response.json())["place_id"] == result["place_id"]
    assert [("place_id" in c, "address" in c) for c in maps.calls()[1:]] == [
        (True, False),
        (False, True),
    ]


async def test_misses_are_rate_limited_per_caller(
    geo_service: Any, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    async with geo_service(maps, geocode_misses_per_minute=2) as svc:
        statuses = [(await get(svc, an_address(), user)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_geocode_needs_a_caller_and_an_address(
    geo: RunningService, user: dict[str, str]
) -> None:
    assert (await geo.client.get("/api/geo/geocode", params={"address": "x"})).status == 401
    assert (await geo.client.get("/api/geo/geocode", headers=user)).status == 400
    assert (await get(geo, " ,,, ", user)).status == 400


async def test_sandbox_answers_only_from_the_cache(
    geo_service: Any, maps: GeoMapsFake, user: dict[str, str]
) -> None:
    address, result = register(maps)
    async with geo_service(maps) as live:
        assert (await get(live, address, user)).status == 200  # now cached
    async with geo_service(None) as sandbox:
        cached = await get(sandbox, address, user)
        assert cached.status == 200
        assert (await cached.json())["place_id"] == result["place_id"]
        unknown = await get(sandbox, an_address(), user)
        assert unknown.status == 503
        assert (await unknown.json())["detail"] == "geocoding provider not configured"
        ready = await (await sandbox.client.get("/readyz")).json()
    assert ready["providers"] == {"google_maps": "sandbox"}
    assert len(maps.calls()) == 1
