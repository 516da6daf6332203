"""SMS-pumping defence: per destination prefix, a rolling conversion rate (verified ÷ sent).

A toll-fraud ring sends codes to many numbers of one premium range and never verifies one; each
number stays under every per-phone cap, but the range's conversion collapses. A prefix whose
conversion falls under the floor with enough volume is blocked until an operator allows it.
Counts live in time buckets so the window rolls without a sweeper."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from otp.store import lua

BUCKETS = 12
KEY = "otp:{pumping}"  # one hash tag: the gate reads all of a prefix's buckets in one script
BLOCKED = f"{KEY}:blocked"


@dataclass(frozen=True)
class PumpingRules:
    floor: float  # 0 switches the defence off
    min_sends: int
    window_ms: int

    @property
    def bucket_ms(self) -> int:
        return max(1, self.window_ms // BUCKETS)


@dataclass(frozen=True)
class BlockedPrefix:
    prefix: str
    blocked_at_ms: int


class PrefixGuard:
    def __init__(self, redis: Redis, rules: PumpingRules) -> None:
        self._redis, self.rules = redis, rules
        self._gate = redis.register_script(lua("prefix_gate.lua"))

    def _buckets(self, prefix: str, kind: str, now_ms: int) -> list[str]:
        current = now_ms // self.rules.bucket_ms
        return [f"{KEY}:{prefix}:{kind}:{current - i}" for i in range(BUCKETS)]

    async def admits(self, prefix: str) -> tuple[bool, bool]:
        """(open, blocked just now): whether a code may go to this prefix."""
        if self.rules.floor <= 0:
            return True, False
        now = int(time.time() * 1000)
        keys = [BLOCKED, *self._buckets(prefix, "sent", now), *self._buckets(prefix, "ok", now)]
        args: list[str | int | float] = [
            prefix, BUCKETS, self.rules.floor, self.rules.min_sends, now
        ]  # fmt: skip
        (verdict,) = await self._gate(keys=keys, args=args)
        return int(verdict) == 0, int(verdict) == 2

    async def _count(self, prefix: str, kind: str) -> None:
        key = self._buckets(prefix, kind, int(time.time() * 1000))[0]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, self.rules.window_ms + self.rules.bucket_ms)
            await pipe.execute()

    async def sent(self, prefix: str) -> None:
        await self._count(prefix, "sent")

    async def verified(self, prefix: str) -> None:
        await self._count(prefix, "ok")

    async def blocked(self) -> list[BlockedPrefix]:
        entries = await self._redis.hgetall(BLOCKED)
        return sorted(
            (BlockedPrefix(_text(k), int(v)) for k, v in entries.items()),
            key=lambda b: b.blocked_at_ms,
        )

    async def allow(self, prefix: str) -> bool:
        """Lifts the block and forgets the prefix's counts, so it must collapse anew to be
        blocked again. Returns whether it was blocked."""
        now = int(time.time() * 1000)
        stale = [*self._buckets(prefix, "sent", now), *self._buckets(prefix, "ok", now)]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(BLOCKED, prefix)
            pipe.delete(*stale)
            was_blocked, _ = await pipe.execute()
        return bool(was_blocked)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
