"""Codes in flight, kept until their provider reports on them, so a silent failure can be resent
by the next provider or channel without a new code.

A delivery names the code, which Redis otherwise never holds: it is sealed with AES-GCM under a
key derived from OTP_HASH_KEY (never stored in Redis), bound to its key name, and kept only for the
code's lifetime. A receipt claims it with GETDEL, so Twilio's repeated callbacks act once."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis

from otp.providers import Channel

NONCE = 12


@dataclass(frozen=True)
class Delivery:
    e164: str
    region: str
    purpose: str
    code: str
    digest: str  # the live code's digest: a superseded, used or expired code is not resent
    code_key: str
    step: int  # where in the fallback plan this attempt was
    channel: Channel

    def __repr__(self) -> str:
        return f"Delivery(step={self.step}, {self.channel})"  # never the code or the number


def _key_name(provider: str, message_id: str) -> str:
    return f"otp:delivery:{provider}:{message_id}"


class DeliveryStore:
    def __init__(self, redis: Redis, hash_key: bytes) -> None:
        self._redis = redis
        self._aead = AESGCM(hmac.new(hash_key, b"otp|delivery-seal", hashlib.sha256).digest())

    async def hold(self, provider: str, message_id: str, delivery: Delivery, ttl_ms: int) -> None:
        name = _key_name(provider, message_id)
        nonce = os.urandom(NONCE)
        sealed = nonce + self._aead.encrypt(
            nonce, json.dumps(asdict(delivery)).encode(), name.encode()
        )
        await self._redis.set(name, sealed, px=ttl_ms)

    async def claim(self, provider: str, message_id: str) -> Delivery | None:
        """The delivery, removed so no other receipt acts on it; None if gone or unreadable."""
        name = _key_name(provider, message_id)
        sealed = await self._redis.getdel(name)
        if not isinstance(sealed, bytes) or len(sealed) <= NONCE:
            return None
        try:
            plain = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], name.encode())
        except InvalidTag:
            return None
        return Delivery(**json.loads(plain))

    async def still_live(self, delivery: Delivery) -> bool:
        return bool(await self._redis.get(delivery.code_key) == delivery.digest.encode())
