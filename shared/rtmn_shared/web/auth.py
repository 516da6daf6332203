"""Bearer JWTs: `sub` is the user, `scope` a space-separated list of capabilities, `iss` and `aud`
must be the configured ones, and the key is the static one or the JWKS key the `kid` names."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import jwt
import orjson
from aiohttp import web

from rtmn_shared.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER, CommonSettings
from rtmn_shared.web.jwks import Jwks, VerifyingKey, from_pem
from rtmn_shared.web.problems import Problem

SERVICE = "service"  # a service calling another on its own behalf, never a user
REQUIRED_CLAIMS = ["sub", "exp", "iss", "aud"]
# A client sends one token many times: its verification is reused (like Envoy's jwt_cache) for
# at most this long and never past its exp, so a repeat costs a dict lookup, not a signature.
REUSE_SECONDS = 60.0
REUSE_ENTRIES = 10_000


@dataclass(frozen=True)
class Caller:
    user_id: str
    scopes: frozenset[str]
    # When the user last proved who they are (Unix seconds): `auth_time`, else the token's `iat`.
    signed_in_at: int | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier:
    def __init__(
        self,
        public_key: str | None = None,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        jwks: Jwks | None = None,
        leeway: float = 5.0,
    ) -> None:
        if public_key is None and jwks is None:
            raise ValueError("a JWT public key or a JWKS is needed to verify tokens")
        # Parsed once: loading a PEM per request was the largest cost of an authenticated call.
        self.static_key = from_pem(public_key) if public_key is not None else None
        self.issuer, self.audience = issuer, audience
        self.jwks = jwks
        self.leeway = leeway
        # token -> (caller, until): only verified tokens, oldest dropped first; emptied when the
        # JWKS changes, so a key withdrawn there stops verifying at once.
        self._verified: dict[str, tuple[Caller, float]] = {}
        if jwks is not None:
            jwks.on_change = self._verified.clear

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> TokenVerifier:
        jwks = None
        if settings.jwt_jwks_url is not None:
            jwks = Jwks(
                settings.jwt_jwks_url,
                refresh_seconds=settings.jwt_jwks_refresh_seconds,
                cooldown_seconds=settings.jwt_jwks_cooldown_seconds,
            )
        return cls(
            settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks=jwks,
        )

    async def verify(self, token: str) -> Caller:
        now = time.time()
        reused = self._verified.get(token)
        if reused is not None and now < reused[1]:
            return reused[0]
        key = self.static_key if self.jwks is None else await self._key(token, self.jwks)
        assert key is not None  # __init__ needs a static key or a JWKS
        caller, expires = self.verify_with(token, key)
        if len(self._verified) >= REUSE_ENTRIES:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = caller, min(expires, now + REUSE_SECONDS)
        return caller

    def verify_with(self, token: str, key: VerifyingKey) -> tuple[Caller, float]:
        """The caller and the token's exp, or a 401 problem."""
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": REQUIRED_CLAIMS},
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.MissingRequiredClaimError as error:
            raise _unauthorized(f"the token has no {error.claim!r} claim") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized(f"the token's issuer is not {self.issuer!r}") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(f"the token's audience is not {self.audience!r}") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("the token is not valid") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str):
            raise _unauthorized("the token is not valid")
        caller = Caller(claims["sub"], frozenset(scope.split()), _signed_in_at(claims))
        return caller, float(claims["exp"])

    async def _key(self, token: str, jwks: Jwks) -> VerifyingKey:
        """The JWKS's key of the token's kid; the static key for a token without one. (With no
        JWKS configured the static key verifies every token, whatever kid it names.)"""
        kid = _kid(token)
        if kid is None:
            if self.static_key is None:
                raise _unauthorized("the token names no key (kid)")
            return self.static_key
        key = await jwks.key_for(kid)
        if key is None:
            raise _unauthorized("the token's key (kid) is not known")
        return key

    async def caller(self, request: web.Request, scopes: tuple[str, ...] = ()) -> Caller:
        """The verified caller, holding one of `scopes` when any are named."""
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            raise _unauthorized("a bearer token is required", error=None)
        caller = await self.verify(token.strip())
        if scopes and not any(caller.has(scope) for scope in scopes):
            raise forbidden(scopes)
        return caller


def _signed_in_at(claims: dict[str, object]) -> int | None:
    for name in ("auth_time", "iat"):
        value = claims.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _kid(token: str) -> str | None:
    """The header's kid, read without verifying (it only picks the key that then verifies)."""
    head = token.partition(".")[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:  # binascii.Error and orjson's JSONDecodeError among them
        raise _unauthorized("the token is not valid") from None
    kid = header.get("kid") if isinstance(header, dict) else None
    if kid is not None and not isinstance(kid, str):
        raise _unauthorized("the token is not valid")
    return kid


def forbidden(scopes: tuple[str, ...]) -> Problem:
    needed = " or ".join(repr(scope) for scope in scopes)
    return Problem(
        403,
        f"this needs the {needed} scope",
        headers={
            "WWW-Authenticate": f'Bearer realm="rtmn", error="insufficient_scope", '
            f'scope="{" ".join(scopes)}"'
        },
    )


def _unauthorized(detail: str, error: str | None = "invalid_token") -> Problem:
    # RFC 6750 §3.1: a request that carried no token gets no error code.
    challenge = 'Bearer realm="rtmn"' + (f', error="{error}"' if error else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})
