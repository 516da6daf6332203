"""Bearer JWTs: `sub` is the user, `scope` a space-separated list of rights."""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from rtmn_shared.web.problems import Problem

ALGORITHMS = ["EdDSA", "RS256", "ES256"]
VerifyingKey = (Ed25519PublicKey, RSAPublicKey, EllipticCurvePublicKey)


@dataclass(frozen=True)
class Caller:
    user_id: str
    scopes: frozenset[str]
    # When the user last proved who they are (Unix seconds): `auth_time`, else the token's `iat`.
    signed_in_at: int | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier:
    def __init__(self, public_key: str, *, leeway: float = 5.0) -> None:
        # Parsed once: loading a PEM per request was the largest cost of an authenticated call.
        key = serialization.load_pem_public_key(public_key.encode())
        if not isinstance(key, VerifyingKey):
            raise ValueError("the JWT public key must be an Ed25519, RSA or EC key")
        self.public_key = key
        self.leeway = leeway

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=ALGORITHMS,
                options={"require": ["sub", "exp"]},
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("the token is not valid") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str):
            raise _unauthorized("the token is not valid")
        return Caller(claims["sub"], frozenset(scope.split()), _signed_in_at(claims))

    def caller(self, request: web.Request, scope: str | None = None) -> Caller:
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            raise _unauthorized("a bearer token is required")
        caller = self.verify(token.strip())
        if scope is not None and not caller.has(scope):
            raise Problem(403, f"this needs the {scope!r} scope")
        return caller


def _signed_in_at(claims: dict[str, object]) -> int | None:
    for name in ("auth_time", "iat"):
        value = claims.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="rtmn"'})
