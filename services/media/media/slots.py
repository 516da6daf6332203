"""Uploads in flight per user, counted in Redis so the cap holds across API replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

# A replica that dies mid-upload never gives its slot back: the count expires this long after
# the user's last upload began, which outlasts any upload (bodies stall out after 30 s).
SLOT_TTL_MS = 5 * 60 * 1000

_ACQUIRE = """
local count = redis.call('INCR', KEYS[1])
if count > tonumber(ARGV[1]) then
    redis.call('DECR', KEYS[1])
    return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
"""


class TooManyInFlight(Exception):
    """The user already has as many uploads in flight as they may."""


class UploadSlots:
    def __init__(self, redis: Redis, prefix: str, per_user: int) -> None:
        self.prefix = prefix
        self.per_user = per_user
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        """Raises TooManyInFlight when the user's slots are all taken."""
        key = f"{self.prefix}:uploads-in-flight:{user_id}"
        if not await self._acquire(keys=[key], args=[self.per_user, SLOT_TTL_MS]):
            raise TooManyInFlight
        try:
            yield
        finally:
            # Given back even when the request is cancelled on the way out.
            await asyncio.shield(self._release(keys=[key]))
