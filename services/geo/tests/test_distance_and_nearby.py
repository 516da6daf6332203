"""Distance, merchant locations and PostGIS nearby search, through HTTP on PostgreSQL+PostGIS."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from geo.domain import LatLng, haversine_km
from geo.store import NEARBY_SQL
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService

BENGALURU = LatLng(12.9716, 77.5946)


async def test_distance_is_haversine_on_the_mean_radius(geo: RunningService) -> None:
    response = await geo.client.get(
        "/api/geo/distance", params={"from": "12.9716,77.5946", "to": "13.0827,80.2707"}
    )
    assert response.status == 200
    body = await response.json()
    expected = haversine_km(LatLng(12.9716, 77.5946), LatLng(13.0827, 80.2707))
    assert body["distance_km"] == pytest.approx(expected, abs=1e-6)
    assert body["earth_radius_km"] == 6371.0088
    assert "0.5 %" in body["accuracy"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "91,0", "to": "0,0"},
        {"from": "0,0", "to": "0,-180.5"},
        {"from": "12.9", "to": "0,0"},
        {"from": "x,y", "to": "0,0"},
        {"to": "0,0"},
    ],
)
async def test_bad_distance_input_is_a_400_problem(
    geo: RunningService, params: dict[str, str]
) -> None:
    response = await geo.client.get("/api/geo/distance", params=params)
    assert response.status == 400
    problem = await response.json()
    assert problem["errors"][0]["field"] in ("from", "to")


async def put(svc: RunningService, merchant_id: str, body: Any, headers: dict[str, str]) -> Any:
    return await svc.client.put(f"/api/geo/merchants/{merchant_id}", json=body, headers=headers)


async def test_merchant_locations_need_the_write_scope_or_the_merchant_itself(
    geo: RunningService, suite: Suite
) -> None:
    mid = f"m-{uuid.uuid4().hex[:8]}"
    spot = {"name": "Chai Point", "lat": 12.97, "lng": 77.59}
    assert (await put(geo, mid, spot, {})).status == 401
    assert (await put(geo, mid, spot, suite.bearer("someone"))).status == 403
    assert (await put(geo, mid, spot, suite.bearer("other", "merchant"))).status == 403
    assert (await put(geo, mid, spot, suite.bearer("ops", "admin media:read-any"))).status == 403

    as_itself = await put(geo, mid, spot, suite.bearer(mid, "merchant"))
    assert as_itself.status == 200
    moved = await put(geo, mid, {**spot, "lat": 12.98}, suite.bearer("ops", "geo:merchants-write"))
    assert moved.status == 200
    assert (await moved.json())["lat"] == 12.98
    row = await geo.pool.fetchrow("SELECT lat, lng FROM merchants WHERE id = $1", mid)
    assert row is not None
    assert (row["lat"], row["lng"]) == (12.98, 77.59)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "lat": 90.5, "lng": 0},
        {"name": "x", "lat": 0, "lng": -181},
        {"name": "", "lat": 0, "lng": 0},
        {"lat": 0, "lng": 0},
    ],
)
async def test_bad_merchant_locations_are_refused(
    geo: RunningService, suite: Suite, body: dict[str, Any]
) -> None:
    response = await put(geo, "m-bad", body, suite.bearer("ops", "geo:merchants-write"))
    assert response.status == 422


async def test_bad_merchant_ids_are_refused(geo: RunningService, suite: Suite) -> None:
    spot = {"name": "x", "lat": 0, "lng": 0}
    response = await put(geo, "a%20b", spot, suite.bearer("ops", "geo:merchants-write"))
    assert response.status == 400


@pytest.mark.parametrize(
    "params",
    [
        {"lat": "12.9", "lng": "77.5", "radius_km": "50.1"},
        {"lat": "12.9", "lng": "77.5", "radius_km": "0"},
        {"lat": "12.9", "lng": "77.5", "limit": "101"},
        {"lat": "12.9", "lng": "77.5", "limit": "0"},
        {"lat": "95", "lng": "77.5"},
        {"lat": "12.9"},
    ],
)
async def test_nearby_caps_radius_and_limit(
    geo: RunningService, user: dict[str, str], params: dict[str, str]
) -> None:
    response = await geo.client.get("/api/geo/nearby", params=params, headers=user)
    assert response.status == 400


def random_point_near(center: LatLng, rng: random.Random, spread_deg: float) -> LatLng:
    return LatLng(
        center.lat + rng.uniform(-spread_deg, spread_deg),
        center.lng + rng.uniform(-spread_deg, spread_deg),
    )


async def test_nearby_agrees_with_brute_force_haversine(
    geo: RunningService, user: dict[str, str]
) -> None:
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:6]
    rows = []
    for i in range(2000):
        p = random_point_near(BENGALURU, rng, 0.3)
        rows.append((f"bf-{tag}-{i}", f"shop {i}", p.lat, p.lng))
    await geo.pool.copy_records_to_table(
        "merchants", records=rows, columns=["id", "name", "lat", "lng"]
    )
    # Compare against every merchant in the table, whoever else's tests put there.
    everyone = [
        (r["id"], LatLng(r["lat"], r["lng"]))
        for r in await geo.pool.fetch("SELECT id, lat, lng FROM merchants")
    ]

    for _ in range(12):
        center = random_point_near(BENGALURU, rng, 0.25)
        radius = rng.choice([0.5, 2.0, 5.0, 12.0])
        limit = rng.choice([5, 20, 100])
        response = await geo.client.get(
            "/api/geo/nearby",
            params={"lat": center.lat, "lng": center.lng, "radius_km": radius, "limit": limit},
            headers=user,
        )
        assert response.status == 200
        found = (await response.json())["merchants"]

        truth = sorted(
            (d, mid) for mid, at in everyone if (d := haversine_km(center, at)) <= radius
        )
        expected = truth[:limit]
        assert len(found) == len(expected)
        for got, (distance, _) in zip(found, expected, strict=True):
            assert got["distance_km"] == pytest.approx(distance, abs=1e-5)
        cut_at_a_tie = len(truth) > limit and truth[limit][0] - truth[limit - 1][0] < 1e-5
        if not cut_at_a_tie:
            assert {m["id"] for m in found} == {mid for _, mid in expected}
        distances = [m["distance_km"] for m in found]
        assert distances == sorted(distances)
        assert all(d <= radius + 1e-6 for d in distances)


async def test_nearby_returns_a_merchant_put_through_the_api(
    geo: RunningService, suite: Suite, user: dict[str, str]
) -> None:
    mid = f"m-{uuid.uuid4().hex[:8]}"
    # Far from the random data of other tests: the Andaman sea.
    spot = {"name": "Island Cafe", "lat": 11.6234, "lng": 92.7265}
    assert (await put(geo, mid, spot, suite.bearer("ops", "geo:merchants-write"))).status == 200
    response = await geo.client.get(
        "/api/geo/nearby", params={"lat": 11.6234, "lng": 92.7365, "radius_km": 2}, headers=user
    )
    body = await response.json()
    ids = [m["id"] for m in body["merchants"]]
    assert mid in ids
    hit = body["merchants"][ids.index(mid)]
    assert hit["distance_km"] == pytest.approx(1.09, abs=0.01)
    assert body["radius_km"] == 2
    assert body["limit"] == 20


async def test_nearby_is_answered_from_the_gist_index(geo: RunningService) -> None:
    async with geo.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetch("EXPLAIN " + NEARBY_SQL, 12.97, 77.59, 5000.0, 20)
    text = "\n".join(row[0] for row in plan)
    assert "Index Scan using merchants_location" in text
    assert "Order By" in text
