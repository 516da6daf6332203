"""Keys from a JWKS chosen by the token's kid: a rotated key is taken without a restart, an
unknown kid is a 401, and a flood of invented kids costs the JWKS one fetch per cooldown."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import OKPAlgorithm

from rtmn_shared.cli.token import generate_keypair, mint
from rtmn_shared.settings import CommonSettings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import ClientFactory
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.jwks import Jwks, parse_jwks
from rtmn_shared.web.routes import USER, Call, Routes, json_response


@dataclass
class Issuer:
    """The identity provider's side: private keys by kid, and the JWKS it publishes now."""

    keys: dict[str, str] = field(default_factory=dict)
    published: list[dict[str, str]] = field(default_factory=list)
    fetches: int = 0

    def new_key(self, kid: str) -> None:
        self.keys[kid], public = generate_keypair()
        jwk = json.loads(OKPAlgorithm.to_jwk(load_pem_public_key(public.encode())))
        self.published.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})

    def retire(self, kid: str) -> None:
        self.published = [jwk for jwk in self.published if jwk["kid"] != kid]

    def bearer(self, kid: str, user: str = "u1") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.keys[kid], user, kid=kid)}"}

    def app(self) -> web.Application:
        async def jwks(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response({"keys": self.published})

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", jwks)
        return app


def service(verifier: TokenVerifier) -> web.Application:
    routes = Routes()

    @routes.get("/me", auth=USER)
    async def me(call: Call) -> web.StreamResponse:
        return json_response({"user": call.user.user_id})

    return create_app(service="demo", routes=routes, verifier=verifier, readiness=Readiness())


async def serve_issuer(http: ClientFactory, issuer: Issuer) -> str:
    client = await http(issuer.app())
    return str(client.make_url("/.well-known/jwks.json"))


async def test_a_rotated_key_is_taken_without_a_restart_and_a_retired_one_refused(
    http: ClientFactory,
) -> None:
    issuer = Issuer()
    issuer.new_key("2026-11")
    jwks = Jwks(await serve_issuer(http, issuer), cooldown_seconds=0)
    client = await http(service(TokenVerifier(jwks=jwks)))
    old_token = issuer.bearer("2026-11")
    assert (await client.get("/me", headers=old_token)).status == 200

    issuer.new_key("2026-12")  # signs from now on, published in the same moment
    issuer.retire("2026-11")
    response = await client.get("/me", headers=issuer.bearer("2026-12", "u2"))
    assert response.status == 200
    assert await response.json() == {"user": "u2"}
    # That very token was accepted (its verification kept) before: the new set forgets it.
    retired = await client.get("/me", headers=old_token)
    assert retired.status == 401
    assert (await retired.json())["detail"] == "the token's key (kid) is not known"
    assert "invalid_token" in retired.headers["WWW-Authenticate"]


async def test_an_unknown_kid_is_a_401_and_a_flood_of_them_is_one_fetch_per_cooldown(
    http: ClientFactory,
) -> None:
    issuer = Issuer()
    issuer.new_key("k1")
    now = [0.0]
    jwks = Jwks(await serve_issuer(http, issuer), cooldown_seconds=60, clock=lambda: now[0])
    client = await http(service(TokenVerifier(jwks=jwks)))
    assert issuer.fetches == 1  # at start

    intruder, _ = generate_keypair()

    async def invented() -> int:
        token = mint(intruder, "u1", kid=uuid.uuid4().hex)
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        return response.status

    assert set(await asyncio.gather(*(invented() for _ in range(50)))) == {401}
    assert issuer.fetches == 1, "within the cooldown of the start-up fetch: no fetch at all"
    now[0] = 61.0
    assert set(await asyncio.gather(*(invented() for _ in range(50)))) == {401}
    assert issuer.fetches == 2, "past the cooldown: one fetch, shared by every request"
    assert (await client.get("/me", headers=issuer.bearer("k1"))).status == 200


async def test_the_keys_are_fetched_again_periodically_with_no_request_asking(
    http: ClientFactory,
) -> None:
    issuer = Issuer()
    issuer.new_key("k1")
    jwks = Jwks(await serve_issuer(http, issuer), refresh_seconds=0.05, cooldown_seconds=3600)
    await http(service(TokenVerifier(jwks=jwks)))
    issuer.new_key("k2")
    await wait_for(lambda: "k2" in jwks.keys, message="the periodic fetch to see k2")


async def test_settings_give_the_static_key_to_kidless_tokens_and_the_jwks_to_the_rest(
    suite: Suite, http: ClientFactory, tmp_path: object
) -> None:
    issuer = Issuer()
    issuer.new_key("k1")
    path = tmp_path / "jwks.json"  # type: ignore[operator]
    path.write_bytes(orjson.dumps({"keys": issuer.published}))
    settings = CommonSettings(
        jwt_public_key=suite.public_key,
        jwt_jwks_url=f"file://{path}",
        jwt_jwks_cooldown_seconds=0,
    )
    client = await http(service(TokenVerifier.from_settings(settings)))
    assert (await client.get("/me", headers=suite.bearer("static-user"))).status == 200
    assert (await client.get("/me", headers=issuer.bearer("k1"))).status == 200
    # A kid-less token signed by a JWKS key is checked against the static key: refused.
    kidless = mint(issuer.keys["k1"], "u1")
    refused = await client.get("/me", headers={"Authorization": f"Bearer {kidless}"})
    assert refused.status == 401


def test_a_jwk_for_another_use_or_algorithm_than_its_key_type_is_left_out() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    jwk = json.loads(OKPAlgorithm.to_jwk(public))
    document = {
        "keys": [
            {**jwk, "kid": "good", "alg": "EdDSA"},
            {**jwk, "kid": "no-alg"},
            {**jwk, "kid": "claims-rsa", "alg": "RS256"},
            {**jwk, "kid": "encryption", "use": "enc"},
            {**jwk, "alg": "EdDSA"},  # no kid
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
        ]
    }
    keys = parse_jwks(orjson.dumps(document))
    assert sorted(keys) == ["good", "no-alg"]
    assert {key.algorithm for key in keys.values()} == {"EdDSA"}
