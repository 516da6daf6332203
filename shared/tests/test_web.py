"""The app factory: problems for every error, auth, validation, OpenAPI, readiness, metrics."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import jwt
import pytest
from aiohttp import web
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from rtmn_shared.cli.token import mint
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import ClientFactory
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.problems import PROBLEM_TYPE, Problem
from rtmn_shared.web.ratelimit import Limit, RateLimiter
from rtmn_shared.web.routes import USER, Call, Routes, json_response


class Order(BaseModel):
    amount: int = Field(gt=0)
    note: str | None = None


class Receipt(BaseModel):
    user: str
    amount: int


def demo_app(
    suite: Suite,
    limits: Redis | None = None,
    verifier: TokenVerifier | None = None,
    **readiness: object,
) -> web.Application:
    routes = Routes()
    limiter = RateLimiter(limits, "test") if limits is not None else None

    @routes.post("/orders", body=Order, response=Receipt, status=201, auth=USER)
    async def place(call: Call) -> web.StreamResponse:
        order = await call.body(Order)
        if limiter is not None:
            await limiter.check("orders", call.user.user_id, Limit(2, 60))
        return json_response(Receipt(user=call.user.user_id, amount=order.amount), status=201)

    @routes.get("/close", auth="demo:close")
    async def close_only(call: Call) -> web.StreamResponse:
        return json_response({"ok": True})

    @routes.get("/either", auth=("demo:close", "service"))
    async def either(call: Call) -> web.StreamResponse:
        return json_response({"ok": True})

    @routes.get("/boom")
    async def boom(call: Call) -> web.StreamResponse:
        raise ValueError("secret internals")

    @routes.get("/restarting")
    async def restarting(call: Call) -> web.StreamResponse:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    return create_app(
        service="demo",
        routes=routes,
        verifier=verifier or TokenVerifier(suite.public_key),
        readiness=Readiness(**readiness),  # type: ignore[arg-type]
        max_body_bytes=2048,
    )


async def test_validation_errors_name_the_fields(suite: Suite, http: ClientFactory) -> None:
    client = await http(demo_app(suite))
    response = await client.post("/orders", json={"amount": -1}, headers=suite.bearer("u1"))
    assert response.status == 422
    assert response.content_type == PROBLEM_TYPE
    problem = await response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["amount"]


async def test_a_valid_call_reaches_the_handler_with_its_caller(
    suite: Suite, http: ClientFactory
) -> None:
    client = await http(demo_app(suite))
    response = await client.post("/orders", json={"amount": 5}, headers=suite.bearer("u7"))
    assert response.status == 201
    assert await response.json() == {"user": "u7", "amount": 5}
    assert response.headers["X-Request-ID"]


async def test_auth_is_required_verified_and_scoped(suite: Suite, http: ClientFactory) -> None:
    client = await http(demo_app(suite))
    assert (await client.post("/orders", json={"amount": 1})).status == 401
    tampered = suite.token("u1")[:-2] + "xx"
    bad = await client.post(
        "/orders", json={"amount": 1}, headers={"Authorization": f"Bearer {tampered}"}
    )
    assert bad.status == 401
    expired = suite.token("u1", ttl_seconds=-60)
    old = await client.get("/close", headers={"Authorization": f"Bearer {expired}"})
    assert (await old.json())["detail"] == "the token has expired"
    plain = await client.get("/close", headers=suite.bearer("u1", "demo:open"))
    assert plain.status == 403
    assert plain.headers["WWW-Authenticate"] == (
        'Bearer realm="rtmn", error="insufficient_scope", scope="demo:close"'
    )
    assert (await client.get("/close", headers=suite.bearer("u1", "demo:close"))).status == 200
    for scopes, status in (("service", 200), ("demo:close", 200), ("admin", 403)):
        either = await client.get("/either", headers=suite.bearer("u1", scopes))
        assert either.status == status, scopes


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"issuer": None}, "the token has no 'iss' claim"),
        ({"audience": None}, "the token has no 'aud' claim"),
        ({"issuer": "someone-else"}, "the token's issuer is not 'rtmn-auth'"),
        ({"audience": "another-api"}, "the token's audience is not 'rtmn-api'"),
    ],
)
async def test_a_token_for_another_issuer_or_audience_is_refused(
    suite: Suite, http: ClientFactory, claims: dict[str, str | None], detail: str
) -> None:
    client = await http(demo_app(suite))
    token = mint(suite.private_key, "u1", "demo:close", **claims)  # type: ignore[arg-type]
    response = await client.get("/close", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert (await response.json())["detail"] == detail
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rtmn", error="invalid_token"'


async def test_the_configured_issuer_and_audience_are_the_ones_accepted(
    suite: Suite, http: ClientFactory
) -> None:
    verifier = TokenVerifier(suite.public_key, issuer="https://id.example", audience="payments")
    client = await http(demo_app(suite, verifier=verifier))
    ours = mint(suite.private_key, "u1", issuer="https://id.example", audience="payments")
    response = await client.get("/close", headers={"Authorization": f"Bearer {ours}"})
    assert response.status == 403  # past the token, refused for its scope
    refused = await client.get("/close", headers=suite.bearer("u1", "demo:close"))
    assert refused.status == 401


async def test_malformed_json_oversized_bodies_and_unknown_routes_are_problems(
    suite: Suite, http: ClientFactory
) -> None:
    client = await http(demo_app(suite))
    headers = {**suite.bearer("u1"), "Content-Type": "application/json"}
    malformed = await client.post("/orders", data=b"{not json", headers=headers)
    assert malformed.status == 400
    huge = await client.post("/orders", data=b"x" * 5000, headers=headers)
    assert huge.status == 413
    assert huge.content_type == PROBLEM_TYPE
    # Our words, not aiohttp's ("Maximum request body size 1024 exceeded, actual body size …").
    assert (await huge.json())["detail"] == "the body is larger than this service takes"
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert (await missing.json())["detail"] == "no route for GET /nowhere"


async def test_an_unexpected_error_is_a_500_with_a_correlation_id_and_no_internals(
    suite: Suite, http: ClientFactory
) -> None:
    client = await http(demo_app(suite))
    response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status == 500
    problem = await response.json()
    assert problem["correlation_id"] == "req-123"
    assert "secret" not in await response.text()


async def test_a_database_that_is_away_is_a_503_to_retry_not_a_500(
    suite: Suite, http: ClientFactory
) -> None:
    client = await http(demo_app(suite))
    response = await client.get("/restarting", headers={"X-Request-ID": "req-456"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    problem = await response.json()
    assert problem["correlation_id"] == "req-456"
    assert "starting up" not in await response.text()


async def test_openapi_is_generated_from_the_models(suite: Suite, http: ClientFactory) -> None:
    client = await http(demo_app(suite))
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    place = document["paths"]["/orders"]["post"]
    assert place["security"] == [{"bearer": []}]
    either = document["paths"]["/either"]["get"]
    assert either["security"] == [{"bearer": ["demo:close"]}, {"bearer": ["service"]}]
    assert place["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    assert "amount" in document["components"]["schemas"]["Order"]["properties"]
    assert "201" in place["responses"]


async def test_readiness_reports_each_dependency(
    suite: Suite, http: ClientFactory, redis: Redis
) -> None:
    ready = await http(
        demo_app(suite, redis=redis, amqp_url=suite.amqp_url, providers={"sms": "sandbox"})
    )
    body = await (await ready.get("/readyz")).json()
    assert body == {
        "status": "ok",
        "checks": {"redis": "ok", "broker": "ok"},
        "providers": {"sms": "sandbox"},
    }
    down = await http(demo_app(suite, amqp_url="amqp://guest:guest@127.0.0.1:1/"))
    response = await down.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["broker"].startswith("down")


async def test_metrics_count_requests_by_route(suite: Suite, http: ClientFactory) -> None:
    client = await http(demo_app(suite))
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    assert (
        'rtmn_http_requests_total{method="GET",route="/healthz",service="demo",status="200"}'
        in text
    )


async def test_metrics_say_which_providers_run_as_their_sandbox(
    suite: Suite, http: ClientFactory
) -> None:
    client = await http(demo_app(suite, providers={"sms": "sandbox", "email": "live"}))
    text = await (await client.get("/metrics")).text()
    assert 'rtmn_provider_sandbox{provider="sms",service="demo"} 1.0' in text
    assert 'rtmn_provider_sandbox{provider="email",service="demo"} 0.0' in text


async def test_the_rate_limit_holds_under_concurrency_and_says_when_to_retry(
    suite: Suite, http: ClientFactory, redis: Redis
) -> None:
    client = await http(demo_app(suite, redis))
    headers = suite.bearer("limited-user")
    responses = await asyncio.gather(
        *(client.post("/orders", json={"amount": 1}, headers=headers) for _ in range(20))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 2
    assert statuses.count(429) == 18
    limited = next(r for r in responses if r.status == 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_a_verified_token_is_reused_until_its_exp_and_not_a_moment_longer(
    suite: Suite,
) -> None:
    verifier = TokenVerifier(suite.public_key, leeway=0)
    token = suite.token("u1", "demo:close", ttl_seconds=1)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # reused, not verified again
    await wait_for(lambda: time.time() > exp + 0.01, timeout=5, message="the token's exp")
    with pytest.raises(Problem) as refused:
        await verifier.verify(token)
    assert (refused.value.status, refused.value.detail) == (401, "the token has expired")
