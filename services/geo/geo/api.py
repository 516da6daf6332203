"""HTTP handlers: thin; geocoding lives in geo.geocoding, SQL in geo.store."""

from __future__ import annotations

import re

from aiohttp import web

from geo import store
from geo.domain import EARTH_RADIUS_KM, LatLng, haversine_km
from geo.geocoding import Answer, Geocoding, NoPlace, Unavailable
from geo.providers.base import InvalidQuery, NotConfigured, Rejected
from geo.schemas import (
    Distance,
    DistanceQuery,
    GeocodeQuery,
    GeocodeResult,
    MerchantLocation,
    MerchantOut,
    NearbyMerchantOut,
    NearbyQuery,
    NearbyResult,
    Point,
)
from rtmn_shared.db import Pool
from rtmn_shared.web.problems import Problem, service_unavailable
from rtmn_shared.web.ratelimit import Limit, RateLimiter
from rtmn_shared.web.routes import USER, Call, Routes, json_response

MERCHANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MERCHANTS_WRITE = "geo:merchants-write"  # operators: any merchant's location
MERCHANT_SCOPE = "merchant"  # a merchant's own token: its own location only


def build_routes(
    *, geocoding: Geocoding, pool: Pool, limiter: RateLimiter, misses_per_minute: int
) -> Routes:
    routes = Routes()
    miss_limit = Limit(misses_per_minute, 60)

    @routes.get("/api/geo/geocode", query=GeocodeQuery, response=GeocodeResult, auth=USER)
    async def geocode(call: Call) -> web.StreamResponse:
        """Coordinates of an Indian address (Google Maps), cached."""
        address = call.query(GeocodeQuery).address
        try:
            key = Geocoding.key(address)
            answer = await geocoding.cached(key)
            if answer is None:
                # Only lookups that reach the provider cost money, so only they are limited.
                await limiter.check("geocode", call.user.user_id, miss_limit)
                answer = await geocoding.resolve(key)
        except NoPlace:
            raise Problem(404, "no place in India matches this address") from None
        except InvalidQuery:
            raise Problem(400, "the geocoding provider rejected the address as invalid") from None
        except NotConfigured:
            raise service_unavailable("geocoding provider not configured") from None
        except Rejected:
            raise Problem(502, "the geocoding provider refused the request") from None
        except Unavailable as error:
            raise service_unavailable(
                "the geocoding provider is unavailable; try again shortly",
                retry_after=max(1, round(error.retry_after)),
            ) from None
        return json_response(_geocode_result(address, answer))

    @routes.get("/api/geo/distance", query=DistanceQuery, response=Distance)
    async def distance(call: Call) -> web.StreamResponse:
        """Great-circle distance in km (haversine on the mean Earth radius, ~0.5 %)."""
        query = call.query(DistanceQuery)
        km = haversine_km(LatLng.parse(query.from_), LatLng.parse(query.to))
        return json_response(
            Distance(
                distance_km=round(km, 6),
                earth_radius_km=EARTH_RADIUS_KM,
                accuracy="within about 0.5 % of the ellipsoidal distance",
            )
        )

    @routes.put("/api/geo/merchants/{id}", body=MerchantLocation, response=MerchantOut,
                auth=(MERCHANTS_WRITE, MERCHANT_SCOPE))  # fmt: skip
    async def put_merchant(call: Call) -> web.StreamResponse:
        """Set a merchant's location: `geo:merchants-write`, or `merchant` for itself."""
        merchant_id = call.path("id")
        if not MERCHANT_ID.match(merchant_id):
            raise Problem(400, "a merchant id is 1-64 letters, digits, '-' or '_'")
        caller = call.user
        if not (caller.has(MERCHANTS_WRITE) or caller.user_id == merchant_id):
            raise Problem(403, f"the {MERCHANT_SCOPE!r} scope sets its own location only")
        body = await call.body(MerchantLocation)
        saved = await store.upsert_merchant(
            pool, merchant_id, body.name, LatLng(body.lat, body.lng)
        )
        return json_response(
            MerchantOut(
                id=saved.id,
                name=saved.name,
                lat=saved.location.lat,
                lng=saved.location.lng,
                updated_at=saved.updated_at.isoformat(),
            )
        )

    @routes.get("/api/geo/nearby", query=NearbyQuery, response=NearbyResult, auth=USER)
    async def nearby(call: Call) -> web.StreamResponse:
        """Merchants within radius_km (at most 50) of a point, nearest first (at most 100)."""
        query = call.query(NearbyQuery)
        found = await store.nearby(pool, LatLng(query.lat, query.lng), query.radius_km, query.limit)
        merchants = [
            NearbyMerchantOut(
                id=m.id,
                name=m.name,
                lat=m.location.lat,
                lng=m.location.lng,
                distance_km=round(m.distance_km, 6),
            )
            for m in found
        ]
        return json_response(
            NearbyResult(merchants=merchants, radius_km=query.radius_km, limit=query.limit)
        )

    return routes


def _geocode_result(address: str, answer: Answer) -> GeocodeResult:
    place = answer.place
    return GeocodeResult(
        address=address,
        formatted_address=place.formatted_address,
        place_id=place.place_id,
        location=Point(lat=place.location.lat, lng=place.location.lng),
        partial_match=place.partial_match,
        source="cache" if answer.from_cache else "provider",
    )
