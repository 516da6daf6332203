"""The verification token: EdDSA, verifiable with the published key, broken by any change."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import jwt
import pytest

from otp.tokens import KeyMismatch, TokenSigner
from rtmn_shared.cli.token import generate_keypair

if TYPE_CHECKING:
    from conftest import Harness, Starter


def _flip(segment: str) -> str:
    return segment[:-1] + ("A" if segment[-1] != "A" else "B")


def test_the_token_verifies_with_the_public_key_and_not_when_tampered() -> None:
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="rtmn/otp", ttl_s=600, public_pem=public)
    token, claims = signer.issue("+919876543210", "login")
    decoded = jwt.decode(token, public, algorithms=["EdDSA"])
    assert decoded == claims
    assert jwt.get_unverified_header(token)["kid"] == signer.kid

    header, payload, signature = token.split(".")
    forged_claims = {**claims, "phone": "+919876543211", "sub": "+919876543211"}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    for tampered in (
        f"{header}.{forged}.{signature}",
        f"{header}.{payload}.{_flip(signature)}",
        f"{header}.{_flip(payload)}.{signature}",
    ):
        with pytest.raises(jwt.InvalidTokenError):
            jwt.decode(tampered, public, algorithms=["EdDSA"])
    other_public = generate_keypair()[1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_public, algorithms=["EdDSA"])


def test_a_public_key_of_another_pair_is_refused_at_start() -> None:
    private, _ = generate_keypair()
    with pytest.raises(KeyMismatch):
        TokenSigner(private, issuer="rtmn/otp", ttl_s=600, public_pem=generate_keypair()[1])


async def test_published_keys_verify_issued_tokens(h: Harness) -> None:
    phone = h.new_phone()
    assert (await h.send(phone)).status == 202
    token = (await (await h.verify(phone, h.twilio_code(phone))).json())["token"]

    jwks = await (await h.client.get("/api/otp/.well-known/jwks.json")).json()
    (key,) = jwks["keys"]
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    verified = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"])
    assert verified["phone"] == phone

    pem = (await (await h.client.get("/api/otp/public-key")).json())["public_key"]
    assert pem.strip() == h.public_key.strip()
    assert jwt.decode(token, pem, algorithms=["EdDSA"])["purpose"] == "login"


async def test_the_login_key_pair_cannot_sign_verification_tokens(
    start_otp: Starter, signing_keys: tuple[str, str]
) -> None:
    # Otherwise every service would accept a verification token as a login bearer token.
    with pytest.raises(SystemExit, match="JWT_PUBLIC_KEY"):
        async with start_otp(jwt_public_key=signing_keys[1]):
            pass
