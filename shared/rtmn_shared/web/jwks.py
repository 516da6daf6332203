"""Verification keys from a JWKS (RFC 7517), chosen by a token's `kid`, that rotate without a
restart: fetched at start, again every `refresh_seconds`, and at once when a token names a kid
not yet known, at most once per `cooldown_seconds`, so a flood of invented kids costs the issuer
one request per cooldown, and the request path no network at all otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from rtmn_shared.logs import redact_url

log = logging.getLogger(__name__)

PublicKey = Ed25519PublicKey | RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class VerifyingKey:
    """A public key and the one algorithm it verifies: a token cannot choose another."""

    key: PublicKey
    algorithm: str


def pinned(key: object) -> VerifyingKey | None:
    """EdDSA for Ed25519, RS256 for RSA, ES256 for P-256; None for any other key."""
    if isinstance(key, Ed25519PublicKey):
        return VerifyingKey(key, "EdDSA")
    if isinstance(key, RSAPublicKey) and key.key_size >= 2048:
        return VerifyingKey(key, "RS256")
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return VerifyingKey(key, "ES256")
    return None


def from_pem(pem: str) -> VerifyingKey:
    key = pinned(serialization.load_pem_public_key(pem.encode()))
    if key is None:
        raise ValueError("the JWT public key must be an Ed25519, RSA (2048+) or P-256 key")
    return key


def parse_jwks(document: bytes) -> dict[str, VerifyingKey]:
    """The signing keys of a JWKS by kid; a key without a kid, for another use, or of another
    algorithm than its type's pinned one is left out."""
    data = orjson.loads(document)
    found: dict[str, VerifyingKey] = {}
    for jwk in data.get("keys", []) if isinstance(data, dict) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            key = pinned(PyJWK(jwk).key)
        except (PyJWTError, ValueError, TypeError):  # a malformed or unsupported JWK
            continue
        if key is not None and jwk.get("alg", key.algorithm) == key.algorithm:
            found[jwk["kid"]] = key
    return found


class Jwks:
    def __init__(
        self,
        source: str,
        *,
        refresh_seconds: float = 300.0,
        cooldown_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.shown = redact_url(urlsplit(source)._replace(query="").geturl())
        self.refresh_seconds = refresh_seconds
        self.cooldown_seconds = cooldown_seconds
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.clock = clock
        self.keys: dict[str, VerifyingKey] = {}
        self.on_change: Callable[[], None] = lambda: None  # the verifier forgets what it verified
        self.fetches = 0
        self._last_fetch = -float("inf")
        self._fetching: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def key_for(self, kid: str) -> VerifyingKey | None:
        """The key of `kid`, fetching the set again first if it is unknown and the cooldown
        allows; concurrent callers share one fetch."""
        key = self.keys.get(kid)
        if key is not None:
            return key
        if self._fetching is None and self.clock() - self._last_fetch >= self.cooldown_seconds:
            self._fetching = asyncio.create_task(self.refresh())
            self._fetching.add_done_callback(self._fetched)
        if self._fetching is not None:
            await asyncio.shield(self._fetching)
        return self.keys.get(kid)

    def _fetched(self, _: asyncio.Task[None]) -> None:
        self._fetching = None

    async def refresh(self) -> None:
        """Replaces the keys with the set as published now; keeps them if it cannot be read."""
        self._last_fetch = self.clock()
        self.fetches += 1
        try:
            keys = parse_jwks(await self._read())
        except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning(
                "jwks: %s unreadable, keeping %d keys: %r", self.shown, len(self.keys), error
            )
            return
        if not keys:
            log.warning("jwks: %s has no usable key, keeping %d keys", self.shown, len(self.keys))
            return
        if keys.keys() != self.keys.keys():
            log.info("jwks: keys now %s", sorted(keys))
        changed = keys != self.keys
        self.keys = keys
        if changed:
            self.on_change()

    async def _read(self) -> bytes:
        url = urlsplit(self.source)
        if url.scheme == "file":
            return await asyncio.to_thread(Path(unquote(url.path)).read_bytes)
        if self._http is None:
            raise RuntimeError("the JWKS is read only while its app runs (Jwks.context)")
        async with self._http.get(self.source, raise_for_status=True) as response:
            return await response.read()

    async def context(self, _: web.Application) -> AsyncIterator[None]:
        """The app's cleanup context: the first fetch, then the periodic one until shutdown."""
        async with aiohttp.ClientSession(timeout=self.timeout) as self._http:
            await self.refresh()
            task = asyncio.create_task(self._periodically())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                if self._fetching is not None:
                    self._fetching.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._fetching
        self._http = None

    async def _periodically(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()
