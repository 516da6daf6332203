"""SQL: the places we geocoded (never their coordinates) and merchant locations (PostGIS).

The role's search_path is only "geo": PostGIS functions, types and operators live in public and
are named with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from geo.domain import LatLng, Place
from rtmn_shared.db import Connection, Pool

_POINT = "public.ST_SetSRID(public.ST_MakePoint($2, $1), 4326)::public.geography"

# $1 lat, $2 lng, $3 radius in metres, $4 limit.
NEARBY_SQL = f"""
    SELECT id, name, lat, lng,
           public.ST_Distance(location, {_POINT}, false) / 1000.0 AS distance_km
      FROM merchants
     WHERE public.ST_DWithin(location, {_POINT}, $3, false)
     ORDER BY location OPERATOR(public.<->) {_POINT}
     LIMIT $4"""  # noqa: S608 - _POINT is a constant; every value is a parameter


@dataclass(frozen=True)
class StoredPlace:
    place_id: str
    formatted_address: str
    partial_match: bool
    fetched_at: datetime


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str
    location: LatLng
    updated_at: datetime


@dataclass(frozen=True)
class NearbyMerchant:
    id: str
    name: str
    location: LatLng
    distance_km: float


async def find_place(db: Pool | Connection, address_key: str) -> StoredPlace | None:
    row = await db.fetchrow(
        "SELECT place_id, formatted_address, partial_match, fetched_at"
        " FROM places WHERE address_key = $1",
        address_key,
    )
    if row is None:
        return None
    return StoredPlace(
        row["place_id"], row["formatted_address"], row["partial_match"], row["fetched_at"]
    )


async def save_place(db: Pool | Connection, address_key: str, address: str, place: Place) -> None:
    await db.execute(
        """INSERT INTO places
               (address_key, address, place_id, formatted_address, partial_match, fetched_at)
           VALUES ($1, $2, $3, $4, $5, now())
           ON CONFLICT (address_key) DO UPDATE SET
               place_id = EXCLUDED.place_id,
               formatted_address = EXCLUDED.formatted_address,
               partial_match = EXCLUDED.partial_match,
               fetched_at = EXCLUDED.fetched_at""",
        address_key,
        address,
        place.place_id,
        place.formatted_address,
        place.partial_match,
    )


async def upsert_merchant(
    db: Pool | Connection, merchant_id: str, name: str, at: LatLng
) -> Merchant:
    row = await db.fetchrow(
        """INSERT INTO merchants (id, name, lat, lng) VALUES ($1, $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET
               name = EXCLUDED.name, lat = EXCLUDED.lat, lng = EXCLUDED.lng, updated_at = now()
           RETURNING updated_at""",
        merchant_id,
        name,
        at.lat,
        at.lng,
    )
    assert row is not None
    return Merchant(merchant_id, name, at, row["updated_at"])


async def nearby(
    db: Pool | Connection, at: LatLng, radius_km: float, limit: int
) -> list[NearbyMerchant]:
    """Merchants within radius_km, nearest first; distances on the sphere, like /distance.

    ST_DWithin narrows through the GiST index (its bounding-box test), `<->` walks the same
    index nearest first, so the cost follows `limit`, not the table size.
    """
    rows = await db.fetch(
        NEARBY_SQL,
        at.lat,
        at.lng,
        radius_km * 1000.0,
        limit,
    )
    return [
        NearbyMerchant(r["id"], r["name"], LatLng(r["lat"], r["lng"]), r["distance_km"])
        for r in rows
    ]
