"""Geocoding answers in Redis: coordinates for at most 30 days (Google's terms), misses briefly,
and a lock so that one replica at a time asks the provider about an address."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from geo.domain import LatLng, Place

MAX_COORDINATE_TTL_S = 30 * 24 * 3600

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class NoMatch:
    """A cached ZERO_RESULTS."""


Cached = Place | NoMatch


class GeocodeCache:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "geo",
        coordinate_ttl_s: int = MAX_COORDINATE_TTL_S,
        negative_ttl_s: int = 600,
        lock_ttl_ms: int = 15_000,
    ) -> None:
        if not 0 < coordinate_ttl_s <= MAX_COORDINATE_TTL_S:
            raise ValueError("coordinates may be cached for 30 days at most")
        self._redis = redis
        self._prefix = prefix
        self.coordinate_ttl_s = coordinate_ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.lock_ttl_ms = lock_ttl_ms
        self._release = redis.register_script(_RELEASE)

    def _key(self, kind: str, address_key: str) -> str:
        # Hashed: addresses are long and user-supplied; the key stays bounded and opaque.
        digest = hashlib.sha256(address_key.encode()).hexdigest()[:40]
        return f"{self._prefix}:{kind}:{digest}"

    async def get(self, address_key: str) -> Cached | None:
        raw = await self._redis.get(self._key("gc", address_key))
        if raw is None:
            return None
        data = orjson.loads(raw)
        if data.get("none"):
            return NoMatch()
        return Place(
            place_id=data["place_id"],
            formatted_address=data["formatted_address"],
            location=LatLng(data["lat"], data["lng"]),
            partial_match=data["partial_match"],
        )

    async def put(self, address_key: str, place: Place) -> None:
        value = orjson.dumps(
            {
                "place_id": place.place_id,
                "formatted_address": place.formatted_address,
                "lat": place.location.lat,
                "lng": place.location.lng,
                "partial_match": place.partial_match,
            }
        )
        await self._redis.set(self._key("gc", address_key), value, ex=self.coordinate_ttl_s)

    async def put_no_match(self, address_key: str) -> None:
        await self._redis.set(
            self._key("gc", address_key), b'{"none":true}', ex=self.negative_ttl_s
        )

    async def lock(self, address_key: str) -> str | None:
        """A token if this caller now holds the address's lookup lock, else None."""
        token = secrets.token_hex(8)
        key = self._key("lock", address_key)
        acquired = await self._redis.set(key, token, nx=True, px=self.lock_ttl_ms)
        return token if acquired else None

    async def locked(self, address_key: str) -> bool:
        return bool(await self._redis.exists(self._key("lock", address_key)))

    async def unlock(self, address_key: str, token: str) -> None:
        # Only our own lock: if it expired and another replica took it, that one is kept.
        await self._release(keys=[self._key("lock", address_key)], args=[token])
