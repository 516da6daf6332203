"""Every route a service's OpenAPI document declares `security` on refuses a missing, expired,
tampered, foreign-key or unsigned token, and one without or with another issuer or audience,
with a 401 problem (an unknown kid: shared/tests/test_jwks.py); a route that needs a scope
refuses a plain user's token, an `admin` one and one holding every other capability with a 403
problem; and a refused mutating request changes no row of that service's schema."""

from __future__ import annotations

import asyncpg
import jwt
import pytest
from requests_kit import (
    MUTATING,
    WRONG_CLAIMS,
    bad_tokens,
    every_scope,
    operations,
    prepare,
    send,
)
from security_kit import SERVICE_NAMES, Fleet, problem_error, row_counts

from rtmn_shared.testing.infra import Suite

# Routes that need more than any signed-in caller, and the scopes (any one) each takes: the
# documents must say exactly this, so a new scoped route, or a changed scope, is added here.
SCOPED: dict[str, dict[str, frozenset[str]]] = {
    "payments": {
        "POST /api/payments/{payment_id}/refunds": frozenset({"payments:refund"}),
        "POST /api/payments/{payment_id}/capture": frozenset({"payments:capture"}),
        "POST /api/payments/{payment_id}/void": frozenset({"payments:capture"}),
    },
    "notify": {"POST /api/notify/send": frozenset({"notify:send", "service"})},
    "geo": {"PUT /api/geo/merchants/{id}": frozenset({"geo:merchants-write", "merchant"})},
    "otp": {
        "GET /api/otp/admin/prefixes/blocked": frozenset({"otp:prefixes"}),
        "POST /api/otp/admin/prefixes/allow": frozenset({"otp:prefixes"}),
    },
}
# Scopes a handler honours to widen what an owner sees; no route requires them.
WIDENING = frozenset({"payments:read-any", "media:read-any"})
EVERY_SCOPE = frozenset().union(*(s for routes in SCOPED.values() for s in routes.values()))


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_a_protected_route_refuses_every_bad_token_and_changes_nothing(
    fleet: Fleet, suite: Suite, admin: asyncpg.Connection[asyncpg.Record], name: str
) -> None:
    svc = await fleet.get(name)
    document = await (await svc.client.get("/openapi.json")).json()
    secured = [op for op in operations(document) if op.secured]
    wrong: list[str] = []
    for operation in secured:
        request = prepare(operation, document)
        before = await row_counts(admin, name) if operation.method in MUTATING else None
        for case, headers in bad_tokens(suite, every_scope(document)).items():
            status, content_type, body, response_headers = await send(svc.client, request, headers)
            if status != 401:
                wrong.append(f"{operation.label} with {case}: {status} {body[:120]!r}")
            elif problem := problem_error(status, content_type, body):
                wrong.append(f"{operation.label} with {case}: {problem}")
            elif "Bearer" not in response_headers.get("WWW-Authenticate", ""):
                wrong.append(f"{operation.label} with {case}: no WWW-Authenticate: Bearer")
        if before is not None and await row_counts(admin, name) != before:
            wrong.append(f"{operation.label}: a refused request changed rows of {name}")
    assert secured or name in ("otp",), f"{name} declares no protected route"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_a_scoped_route_refuses_a_user_without_its_scope_and_changes_nothing(
    fleet: Fleet, suite: Suite, admin: asyncpg.Connection[asyncpg.Record], name: str
) -> None:
    svc = await fleet.get(name)
    document = await (await svc.client.get("/openapi.json")).json()
    scoped = {op.label: op for op in operations(document) if op.scopes}
    expected = SCOPED.get(name, {})
    assert {label: op.scopes for label, op in scoped.items()} == expected
    for label, operation in scoped.items():
        others = " ".join(sorted(EVERY_SCOPE - operation.scopes | WIDENING))
        for who, scopes in (("a plain user", ""), ("admin", "admin"), ("other scopes", others)):
            before = await row_counts(admin, name)
            status, content_type, body, headers = await send(
                svc.client, prepare(operation, document), suite.bearer("plain-user", scopes)
            )
            assert status == 403, f"{label} as {who}: {status} {body[:200]!r}"
            assert problem_error(status, content_type, body) is None
            assert 'error="insufficient_scope"' in headers.get("WWW-Authenticate", "")
            assert await row_counts(admin, name) == before, f"{label} as {who} changed rows"


def test_the_bad_tokens_are_really_bad(suite: Suite) -> None:
    """Guards the matrix itself: the tampered token differs from a good one only in its
    signature, and every case is distinct."""
    tokens = bad_tokens(suite)
    values = [h.get("Authorization", "") for h in tokens.values()]
    assert len(set(values)) == len(values)
    tampered = tokens["tampered"]["Authorization"].removeprefix("Bearer ")
    assert tampered.count(".") == 2
    for case in WRONG_CLAIMS:  # signed by our key: only the claim named is wrong
        token = tokens[case]["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(
            token, suite.public_key, algorithms=["EdDSA"], options={"verify_aud": False}
        )
        assert claims["sub"] == "intruder"
