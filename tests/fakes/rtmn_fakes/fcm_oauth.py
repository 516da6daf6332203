"""Google's OAuth token endpoint for service accounts (the JWT bearer grant), as FcmFake serves it.

`FcmFake.service_account()` makes a key the way the Firebase console does; the endpoint checks
what Google checks of the signed assertion (grant type, a signature by a key it issued, the
audience, a short-lived token, a scope) and hands out the fake's current access token. Error
bodies are Google's `{error, error_description}` as its clients report them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Either lets a token send through FCM HTTP v1.
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
# The assertion's audience is Google's token endpoint, whatever URL it is posted to.
AUDIENCES = frozenset(
    {"https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"}
)
MAX_LIFETIME_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: str  # PKCS#8 PEM, as in the key file the console downloads
    token_uri: str


@dataclass(frozen=True)
class Grant:
    """A verified assertion: who asked, and whether its scopes reach FCM."""

    client_email: str
    reaches_fcm: bool


class TokenError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.body = {"error": error, "error_description": description}


class Issuer:
    """The public keys of the service accounts it made, and the assertion check."""

    def __init__(self) -> None:
        # An account may hold several keys at once, as while one is being rotated.
        self._keys: dict[str, list[rsa.RSAPublicKey]] = {}

    def new_account(self, client_email: str, token_uri: str) -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys.setdefault(client_email, []).append(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return ServiceAccount(client_email, pem.decode(), token_uri)

    def grant(self, form: Mapping[str, str], now: float | None = None) -> Grant:
        if form.get("grant_type") != JWT_BEARER:
            raise TokenError(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        claims = self._verified_claims(form.get("assertion", ""))
        if claims.get("aud") not in AUDIENCES:
            raise TokenError("invalid_grant", "Invalid JWT: Failed audience check.")
        _check_lifetime(claims, time.time() if now is None else now)
        scopes = str(claims.get("scope", "")).split()
        if not scopes:
            raise TokenError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        return Grant(str(claims["iss"]), not FCM_SCOPES.isdisjoint(scopes))

    def _verified_claims(self, assertion: str) -> dict[str, Any]:
        try:
            header_part, claims_part, signature_part = assertion.split(".")
            header: object = json.loads(_unbase64(header_part))
            claims: object = json.loads(_unbase64(claims_part))
            signature = _unbase64(signature_part)
        except (ValueError, binascii.Error):
            raise TokenError("invalid_grant", "Invalid JWT Signature.") from None
        if not isinstance(claims, dict) or not isinstance(header, dict):
            raise TokenError("invalid_grant", "Invalid JWT Signature.")
        keys = self._keys.get(str(claims.get("iss")), [])
        if header.get("alg") == "RS256":
            signed = f"{header_part}.{claims_part}".encode()
            for key in keys:
                try:
                    key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    continue
                return claims
        raise TokenError("invalid_grant", "Invalid JWT Signature.")


def _check_lifetime(claims: Mapping[str, Any], now: float) -> None:
    issued, expires = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(issued, int)
        or not isinstance(expires, int)
        or expires - issued > MAX_LIFETIME_SECONDS
        or not issued - CLOCK_SKEW_SECONDS <= now <= expires
    ):
        raise TokenError(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim.",
        )


def _unbase64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
