"""SCRAM-SHA-256 password verifiers (RFC 5802/7677) as PostgreSQL stores them, made and checked
here: a role's password reaches the server only as its verifier, and provisioning leaves a role
alone when its stored verifier already matches the password it would set."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

ITERATIONS = 4096  # PostgreSQL's default scram_iterations
_STORED = re.compile(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)")


def verifier(password: str, iterations: int = ITERATIONS) -> str:
    """What `ALTER ROLE ... PASSWORD` may be given instead of the password itself."""
    salt = secrets.token_bytes(16)
    stored_key, server_key = _keys(password, salt, iterations)
    encoded = [base64.b64encode(b).decode() for b in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"


def matches(stored: str | None, password: str) -> bool:
    """Whether `stored` (pg_authid.rolpassword) is a SCRAM verifier of `password`."""
    found = _STORED.fullmatch(stored or "")
    if found is None:
        return False
    iterations, salt, stored_key, server_key = found.groups()
    keys = _keys(password, base64.b64decode(salt), int(iterations))
    expected = [base64.b64decode(stored_key), base64.b64decode(server_key)]
    return all(hmac.compare_digest(a, b) for a, b in zip(keys, expected, strict=True))


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # SASLprep leaves ASCII as it is; our generated passwords are ASCII (callers check).
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return hashlib.sha256(client_key).digest(), server_key
