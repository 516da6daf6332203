"""OTP state in Redis, changed only by the Lua scripts beside this module (one round trip each)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

from redis.asyncio import Redis

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

Refusal = Literal["cooldown", "locked", "hourly", "daily", "ip", "backoff"]
Verdict = Literal["ok", "wrong"]


def lua(name: str) -> str:
    """One of the package's Redis scripts (otp/lua/)."""
    return (files("otp") / "lua" / name).read_text()


@dataclass(frozen=True)
class Keys:
    """One phone, purpose and client. Names carry HMACs, never the number or the address;
    `{ph}` keeps one phone's keys in one cluster slot."""

    code: str
    wrong: str
    gap: str
    sends: str
    tries: str
    cooldown: str
    hourly: str
    daily: str
    ip: str

    @classmethod
    def of(cls, phone_hash: str, purpose: str, client_hash: str) -> Keys:
        tag = f"otp:{{{phone_hash}}}"
        client = f"{tag}:client:{client_hash}"
        return cls(
            code=f"{tag}:{purpose}:code",
            wrong=f"{tag}:{purpose}:wrong",
            gap=f"{tag}:{purpose}:gap",
            sends=f"{tag}:sends",
            tries=f"{client}:{purpose}:tries",
            cooldown=f"{client}:cooldown",
            hourly=f"{client}:hourly",
            daily=f"{client}:daily",
            ip=f"otp:ip:{client_hash}:hourly",
        )


@dataclass(frozen=True)
class Rules:
    code_ttl_ms: int
    cooldown_ms: int
    max_attempts: int
    max_wrong_per_code: int
    hourly_cap: int
    daily_cap: int
    ip_hourly_cap: int
    backoff_after: int
    backoff_max_ms: int


@dataclass(frozen=True)
class Admitted:
    """A new code is stored: send it."""


@dataclass(frozen=True)
class Coalesced:
    """The phone was sent a code moments ago; answered like a send, and nothing is sent."""


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
        self._admit = redis.register_script(lua("admit_send.lua"))
        self._verify = redis.register_script(lua("verify.lua"))
        self._discard = redis.register_script(lua("discard.lua"))

    async def admit(self, keys: Keys, digest: str) -> Admitted | Coalesced | Refused:
        """Stores `digest` as the live code unless the caller's limits or the phone's gap say no."""
        r = self.rules
        passed, reason, wait_ms = await self._admit(
            keys=[keys.code, keys.wrong, keys.gap, keys.sends, keys.tries, keys.cooldown,
                  keys.hourly, keys.daily, keys.ip],
            args=[digest, r.code_ttl_ms, r.cooldown_ms, r.max_attempts, r.hourly_cap,
                  r.daily_cap, r.ip_hourly_cap, HOUR_MS, DAY_MS, r.backoff_after,
                  r.backoff_max_ms],
        )  # fmt: skip
        if int(passed) == 1:
            return Admitted()
        if int(passed) == 2:
            return Coalesced()
        return Refused(reason.decode(), max(1, math.ceil(int(wait_ms) / 1000)))

    async def check(self, keys: Keys, digest: str) -> Checked:
        r = self.rules
        verdict, left = await self._verify(
            keys=[keys.code, keys.wrong, keys.tries, keys.gap],
            args=[digest, r.max_attempts, r.max_wrong_per_code, r.code_ttl_ms, r.cooldown_ms],
        )
        return Checked(verdict.decode(), int(left))

    async def discard(self, keys: Keys, digest: str) -> bool:
        return bool(
            await self._discard(
                keys=[keys.code, keys.gap, keys.cooldown, keys.sends], args=[digest]
            )
        )
