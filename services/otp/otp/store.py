"""OTP state in Redis, changed only by the Lua scripts beside this module (one round trip each)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

from redis.asyncio import Redis

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

Refusal = Literal["cooldown", "locked", "hourly", "daily", "ip"]
Verdict = Literal["ok", "wrong", "missing"]


def _script(name: str) -> str:
    return (files("otp") / "lua" / name).read_text()


@dataclass(frozen=True)
class Keys:
    """Key names carry the phone's HMAC, never the number; `{...}` keeps one phone in one slot."""

    code: str
    attempts: str
    cooldown: str
    hourly: str
    daily: str

    @classmethod
    def of(cls, phone_hash: str, purpose: str) -> Keys:
        tag = f"otp:{{{phone_hash}}}"
        return cls(
            code=f"{tag}:{purpose}:code",
            attempts=f"{tag}:{purpose}:attempts",
            cooldown=f"{tag}:cooldown",
            hourly=f"{tag}:hourly",
            daily=f"{tag}:daily",
        )


def ip_key(client_hash: str) -> str:
    return f"otp:ip:{client_hash}:hourly"


@dataclass(frozen=True)
class Rules:
    code_ttl_ms: int
    cooldown_ms: int
    max_attempts: int
    hourly_cap: int
    daily_cap: int
    ip_hourly_cap: int


@dataclass(frozen=True)
class Admitted:
    pass


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    retry_after_s: int


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    attempts_left: int


class CodeStore:
    def __init__(self, redis: Redis, rules: Rules) -> None:
        self.rules = rules
        self._admit = redis.register_script(_script("admit_send.lua"))
        self._verify = redis.register_script(_script("verify.lua"))
        self._discard = redis.register_script(_script("discard.lua"))

    async def admit(self, keys: Keys, client_hash: str, digest: str) -> Admitted | Refused:
        """Stores `digest` as the live code if no cooldown, lock or cap stands in the way."""
        r = self.rules
        passed, reason, wait_ms = await self._admit(
            keys=[keys.code, keys.attempts, keys.cooldown, keys.hourly, keys.daily,
                  ip_key(client_hash)],
            args=[digest, r.code_ttl_ms, r.cooldown_ms, r.max_attempts, r.hourly_cap,
                  r.daily_cap, r.ip_hourly_cap, HOUR_MS, DAY_MS],
        )  # fmt: skip
        if int(passed):
            return Admitted()
        return Refused(reason.decode(), max(1, math.ceil(int(wait_ms) / 1000)))

    async def check(self, keys: Keys, digest: str) -> Checked:
        verdict, left = await self._verify(
            keys=[keys.code, keys.attempts], args=[digest, self.rules.max_attempts]
        )
        return Checked(verdict.decode(), int(left))

    async def discard(self, keys: Keys, digest: str) -> bool:
        return bool(await self._discard(keys=[keys.code, keys.cooldown], args=[digest]))
