"""`rtmn-token`: development keys and bearer tokens for local use. Never for production."""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rtmn_shared.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER


def generate_keypair() -> tuple[str, str]:
    """An Ed25519 key pair as (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def mint(
    private_pem: str,
    subject: str,
    scopes: str = "",
    ttl_seconds: int = 3600,
    *,
    issuer: str | None = DEFAULT_ISSUER,
    audience: str | None = DEFAULT_AUDIENCE,
    kid: str | None = None,
) -> str:
    """An EdDSA token; `issuer` or `audience` None leaves that claim out (tests of refusals)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "scope": scopes,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        **({"iss": issuer} if issuer is not None else {}),
        **({"aud": audience} if audience is not None else {}),
    }
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, private_pem, algorithm="EdDSA", headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rtmn-token", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("keygen", help="write jwt-private.pem and jwt-public.pem into DIR")
    keys.add_argument("dir", type=Path)
    token = sub.add_parser("mint", help="print a signed token")
    token.add_argument("--key", type=Path, required=True, help="private key PEM")
    token.add_argument("--sub", required=True, help="the user id")
    token.add_argument("--scope", default="", help='e.g. "payments:refund notify:send"')
    token.add_argument("--ttl", type=int, default=3600)
    token.add_argument("--iss", default=os.environ.get("JWT_ISSUER", DEFAULT_ISSUER))
    token.add_argument("--aud", default=os.environ.get("JWT_AUDIENCE", DEFAULT_AUDIENCE))
    token.add_argument("--kid", help="the key id a JWKS publishes the public key under")
    args = parser.parse_args(argv)

    if args.command == "keygen":
        args.dir.mkdir(parents=True, exist_ok=True)
        private, public = generate_keypair()
        (args.dir / "jwt-private.pem").write_text(private)
        (args.dir / "jwt-private.pem").chmod(0o600)
        (args.dir / "jwt-public.pem").write_text(public)
        print(args.dir / "jwt-public.pem")
    else:
        private = args.key.read_text()
        print(
            mint(
                private,
                args.sub,
                args.scope,
                args.ttl,
                issuer=args.iss,
                audience=args.aud,
                kid=args.kid,
            )
        )
