"""The phone-verification token: an EdDSA JWT any service verifies with our public key."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TOKEN_USE = "phone_verification"  # noqa: S105 - a claim value


class KeyMismatch(ValueError):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenSigner:
    def __init__(
        self, private_pem: str, *, issuer: str, ttl_s: int, public_pem: str | None = None
    ) -> None:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("OTP_SIGNING_KEY must be an Ed25519 private key (EdDSA)")
        self._key = key
        derived = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public_pem is not None and not self.same_key_as(public_pem):
            raise KeyMismatch("OTP_SIGNING_PUBLIC_KEY is not the public half of OTP_SIGNING_KEY")
        self.public_pem = derived.decode()
        self.issuer, self.ttl_s = issuer, ttl_s
        raw = key.public_key().public_bytes_raw()
        self.jwk: dict[str, str] = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
        # RFC 7638 thumbprint: a key id that changes exactly when the key does.
        canonical = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        self.kid = _b64(hashlib.sha256(canonical).digest())

    def same_key_as(self, public_pem: str) -> bool:
        try:
            other = serialization.load_pem_public_key(public_pem.encode())
        except ValueError:
            return False
        return isinstance(other, Ed25519PublicKey) and other.public_bytes_raw() == (
            self._key.public_key().public_bytes_raw()
        )

    def issue(self, phone_e164: str, purpose: str) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": phone_e164,
            "phone": phone_e164,
            "purpose": purpose,
            "token_use": TOKEN_USE,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})
        return token, claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{**self.jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}
