"""A fixed-window limiter in one Redis round trip, atomic under any concurrency."""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

from rtmn_shared.web.problems import too_many_requests

_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Limit:
    requests: int
    window_seconds: int


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.prefix = prefix
        self._script = redis.register_script(_SCRIPT)

    async def hit(self, name: str, key: str, limit: Limit) -> int | None:
        """Counts one request; returns None when allowed, else seconds until the window resets."""
        count, ttl_ms = await self._script(
            keys=[f"{self.prefix}:rl:{name}:{key}"], args=[limit.window_seconds * 1000]
        )
        if int(count) <= limit.requests:
            return None
        return max(1, math.ceil(int(ttl_ms) / 1000))

    async def check(self, name: str, key: str, limit: Limit) -> None:
        retry_after = await self.hit(name, key, limit)
        if retry_after is not None:
            raise too_many_requests(retry_after)
