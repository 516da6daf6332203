"""Every route a service's OpenAPI document declares `security` on refuses a missing, expired,
tampered, foreign-key or unsigned token with a 401 problem, a route that needs a scope refuses a
plain user's token with a 403 problem, and a refused mutating request changes no row of that
service's schema."""

from __future__ import annotations

import asyncpg
import pytest
from requests_kit import MUTATING, bad_tokens, operations, prepare, send
from security_kit import SERVICE_NAMES, Fleet, problem_error, row_counts

from rtmn_shared.testing.infra import Suite

# Routes that need more than any signed-in caller; the document cannot say which scope, so
# they are named here (and each must still be in its service's document).
SCOPED: dict[str, set[str]] = {
    "payments": {"POST /api/payments/{payment_id}/refunds"},
    "notify": {"POST /api/notify/send"},
    "geo": {"PUT /api/geo/merchants/{id}"},
    "otp": {"GET /api/otp/admin/prefixes/blocked", "POST /api/otp/admin/prefixes/allow"},
}


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
        for case, headers in bad_tokens(suite).items():
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


@pytest.mark.parametrize("name", sorted(SCOPED))
async def test_a_scoped_route_refuses_a_plain_user_and_changes_nothing(
    fleet: Fleet, suite: Suite, admin: asyncpg.Connection[asyncpg.Record], name: str
) -> None:
    svc = await fleet.get(name)
    document = await (await svc.client.get("/openapi.json")).json()
    scoped = [op for op in operations(document) if op.label in SCOPED[name]]
    assert {op.label for op in scoped} == SCOPED[name], "a scoped route left the document"
    plain = suite.bearer("plain-user")
    for operation in scoped:
        assert operation.secured, f"{operation.label} is not declared as protected"
        before = await row_counts(admin, name)
        status, content_type, body, _ = await send(svc.client, prepare(operation, document), plain)
        assert status == 403, f"{operation.label}: {status} {body[:200]!r}"
        assert problem_error(status, content_type, body) is None
        assert await row_counts(admin, name) == before, f"{operation.label} changed rows"


def test_the_bad_tokens_are_really_bad(suite: Suite) -> None:
    """Guards the matrix itself: the tampered token differs from a good one only in its
    signature, and every case is distinct."""
    tokens = bad_tokens(suite)
    values = [h.get("Authorization", "") for h in tokens.values()]
    assert len(set(values)) == len(values)
    tampered = tokens["tampered"]["Authorization"].removeprefix("Bearer ")
    assert tampered.count(".") == 2
