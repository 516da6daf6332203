"""Routing a create to a gateway by currency and method, failing over to the next one, and the
orders a failed-over payment may have left behind: one payment, at most one capture."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from payments_testkit import Api
from prometheus_client import REGISTRY

from payments import attempt_store, store
from payments.app import SERVICE, build_gateways
from payments.providers.gateway import RAZORPAY_LIMITS, STRIPE_LIMITS, UPI_LIMITS, Gateways
from payments.providers.sandbox import SandboxGateway
from payments.reconcile import Reconciler
from payments.routing import Failure, Router, parse
from payments.settings import Settings
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.settings import SettingsError, load_settings
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

SLOW = 2.0  # seconds the fake takes, past the service's 1 s gateway timeout
LIMITS = {"razorpay": RAZORPAY_LIMITS, "stripe": STRIPE_LIMITS}


def router(table: str | None = None) -> Router:
    sandboxes = Gateways(
        SandboxGateway("razorpay", RAZORPAY_LIMITS),
        SandboxGateway("stripe", STRIPE_LIMITS),
        SandboxGateway("upi", UPI_LIMITS),
    )
    return Router(parse(table, LIMITS), sandboxes, failures=5, reset_after=30)


# -- the table (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "amount", "currency", "gateways"),
    [
        (None, 50_000, "INR", ("razorpay", "stripe")),
        ("card", 50_000, "INR", ("razorpay", "stripe")),
        ("upi", 50_000, "INR", ("razorpay",)),
        ("netbanking", 50_000, "INR", ("razorpay",)),  # Stripe takes cards only
        (None, 5_000, "USD", ("stripe", "razorpay")),
        (None, 5_000, "AUD", ("stripe",)),  # Razorpay does not take AUD
        (None, 60, "INR", ("stripe",)),  # under Razorpay's 1.00, over Stripe's 0.50
    ],
)
def test_the_default_table_routes_by_currency_method_and_limits(
    method: str | None, amount: int, currency: str, gateways: tuple[str, ...]
) -> None:
    assert router().route(None, method, amount, currency) == gateways


def test_a_named_gateway_is_the_only_one_and_what_none_takes_is_said() -> None:
    assert router().route("stripe", None, 50_000, "INR") == ("stripe",)
    assert router().route("upi", "upi", 50_000, "INR") == ("upi",)
    assert router().route("stripe", "upi", 50_000, "INR") == "stripe does not take upi payments"
    assert router().route("upi", None, 5_000, "USD") == "UPI payments are in INR only"
    assert router().route(None, "upi", 5_000, "AUD") == (
        "AUD is not accepted here; use one of AED, EUR, GBP, INR, MYR, SGD, USD"
    )


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("not json", "PAYMENT_ROUTES is not a list of rules: the value: Invalid JSON"),
        (
            '[{"gateways": ["paypal"]}]',
            "PAYMENT_ROUTES is not a list of rules: 0.gateways.0: Input should be 'razorpay' or "
            "'stripe'",
        ),
        (
            '[{"currency": "INR", "gateways": ["razorpay"]}]',
            'PAYMENT_ROUTES must end with a rule for any order: {"gateways": [...]}',
        ),
        (
            '[{"method": "upi", "gateways": ["stripe"]}, {"gateways": ["stripe"]}]',
            "PAYMENT_ROUTES rule 1: stripe does not take upi payments",
        ),
        ('[{"gateways": ["stripe", "stripe"]}]', "PAYMENT_ROUTES rule 1 names a gateway twice"),
    ],
)
def test_a_bad_table_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch, table: str, line: str
) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", "parsed only when a token is verified")
    monkeypatch.setenv("PAYMENT_ROUTES", table)

    with pytest.raises(SettingsError) as refused:
        load_settings(Settings)

    assert str(refused.value).startswith(f"configuration error: {line}")
    assert "\n" not in str(refused.value)


def test_a_table_of_ones_own_replaces_the_default() -> None:
    table = '[{"currency": "INR", "gateways": ["stripe"]}, {"gateways": ["razorpay"]}]'
    assert router(table).route(None, None, 50_000, "INR") == ("stripe",)
    assert router(table).route(None, None, 5_000, "USD") == ("razorpay",)


# -- creates through HTTP, against the fakes ------------------------------------------------------


async def routed(
    api: Api,
    user: str,
    *,
    currency: str = "INR",
    method: str | None = None,
    key: str | None = None,
    order_id: str | None = None,
) -> ClientResponse:
    """A user's create naming no gateway, for an order placed first."""
    order_id = order_id or f"ord_{uuid.uuid4().hex[:8]}"
    await api.place_order(user, order_id, currency=currency)
    headers = api.suite.bearer(user)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"order_id": order_id} | ({"method": method} if method else {})
    response: ClientResponse = await api.client.post(
        "/api/payments/create", json=body, headers=headers
    )
    return response


async def attempts(api: Api, payment_id: str) -> list[tuple[Any, ...]]:
    rows = await api.pool.fetch(
        """SELECT attempt, gateway, outcome, error, watched, settled FROM payment_attempts
           WHERE payment_id = $1 ORDER BY attempt""",
        payment_id,
    )
    return [tuple(r) for r in rows]


def tried(gateway: str, outcome: str) -> float:
    labels = {"gateway": gateway, "outcome": outcome}
    return REGISTRY.get_sample_value("rtmn_payments_gateway_attempts_total", labels) or 0.0


def intents_of(stripe: StripeFake, payment_id: str) -> list[dict[str, Any]]:
    return [
        i
        for i in list(stripe.payment_intents.values())
        if i["metadata"]["payment_id"] == payment_id
    ]


def orders_of(razorpay: RazorpayFake, payment_id: str) -> list[str]:
    return [o["id"] for o in list(razorpay.orders.values()) if o["receipt"] == payment_id]


async def reconciler(api: Api, stack: AsyncExitStack) -> Reconciler:
    gateways = await build_gateways(api.settings(), stack)
    return Reconciler(
        UnitOfWork(api.pool, lambda: None), gateways, after_seconds=86_400, batch=1_000
    )


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=2)


async def test_inr_goes_to_razorpay_and_usd_to_stripe(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    inr = await routed(api, user)
    usd = await routed(api, user, currency="USD")

    assert (inr.status, usd.status) == (201, 201)
    inr_body, usd_body = await inr.json(), await usd.json()
    assert inr_body["gateway"] == "razorpay"
    assert orders_of(razorpay, inr_body["payment_id"]) == [inr_body["gateway_order_id"]]
    assert usd_body["gateway"] == "stripe"
    [intent] = intents_of(stripe, usd_body["payment_id"])
    assert usd_body["gateway_order_id"] == intent["id"]
    assert await attempts(api, usd_body["payment_id"]) == [
        (1, "stripe", "opened", None, False, None)
    ]


async def test_razorpay_down_fails_over_to_stripe_under_the_same_payment(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    before = tried("razorpay", "unknown"), tried("stripe", "opened")
    razorpay.fail_next(1, status=503, path="/v1/orders", method="POST")

    response = await routed(api, user, method="card")

    assert response.status == 201, await response.text()
    created = await response.json()
    payment_id = created["payment_id"]
    [intent] = intents_of(stripe, payment_id)
    assert (created["gateway"], created["gateway_order_id"]) == ("stripe", intent["id"])
    assert created["checkout"] == {"client_secret": intent["client_secret"]}
    view = await api.get(payment_id)
    assert (view["gateway"], view["gateway_order_id"]) == ("stripe", intent["id"])
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "unknown", "GatewayUnavailable", True, None),
        (2, "stripe", "opened", None, False, None),
    ]
    assert (tried("razorpay", "unknown"), tried("stripe", "opened")) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_a_retry_with_the_key_after_failover_returns_the_same_payment_and_gateway(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    razorpay.fail_next(1, status=500, path="/v1/orders", method="POST")
    first = await routed(api, user, key="routed-1", order_id="ord_routed_1")

    again = await routed(api, user, key="routed-1", order_id="ord_routed_1")

    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    payment_id = (await first.json())["payment_id"]
    assert (await first.json())["gateway"] == "stripe"
    assert len(intents_of(stripe, payment_id)) == 1
    assert orders_of(razorpay, payment_id) == []
    assert len(await attempts(api, payment_id)) == 2


async def test_a_refusal_does_not_fail_over(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    razorpay.fail_next(1, status=400, path="/v1/orders", method="POST")

    response = await routed(api, user)

    assert response.status == 502
    [payment_id] = await api.pool.fetchval(
        "SELECT array_agg(id) FROM payments WHERE user_id = $1", user
    )
    assert intents_of(stripe, payment_id) == []
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "refused", "GatewayRejected", False, None)
    ]


async def test_a_named_gateway_does_not_fail_over(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    razorpay.fail_next(1, status=503, path="/v1/orders", method="POST")

    response = await api.create(user, gateway="razorpay")

    assert response.status == 503
    payment_id = (await response.json())["payment_id"]
    assert intents_of(stripe, payment_id) == []
    # The payment stays at Razorpay, where a retry or reconciliation looks for the lost order.
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "unknown", "GatewayUnavailable", False, None)
    ]


async def test_an_open_breaker_is_skipped_without_asking_the_gateway(
    api_for: Callable[[RunningService], Api],
    make_settings: Callable[..., Settings],
    razorpay: RazorpayFake,
    stripe: StripeFake,
    user: str,
) -> None:
    settings = make_settings(gateway_breaker_failures=1, gateway_breaker_reset_seconds=600)
    async with running(SERVICE, settings, consumers=False, relay=False) as service:
        api = api_for(service)
        razorpay.fail_next(1, status=502, path="/v1/orders", method="POST")
        opened = await routed(api, user)  # Razorpay fails once: its breaker opens
        asked = len(razorpay.requests_to("/v1/orders", "POST"))

        response = await routed(api, user)

        assert (opened.status, response.status) == (201, 201)
        created = await response.json()
        assert created["gateway"] == "stripe"
        assert len(razorpay.requests_to("/v1/orders", "POST")) == asked
        assert await attempts(api, created["payment_id"]) == [
            (1, "razorpay", "skipped", "CircuitOpen", False, None),
            (2, "stripe", "opened", None, False, None),
        ]


async def test_a_timeout_at_razorpay_then_paid_there_ends_with_one_capture(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    razorpay.delay_next(1, SLOW, path="/v1/orders", method="POST")

    response = await routed(api, user)

    assert response.status == 201, await response.text()
    created = await response.json()
    payment_id = created["payment_id"]
    assert created["gateway"] == "stripe"
    # Razorpay made its order all the same, after our timeout, and someone paid it.
    [stray] = await wait_for(lambda: orders_of(razorpay, payment_id), message="the late order")
    paid_stray = razorpay.capture(stray)
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid_stray["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    assert (await api.get(payment_id))["status"] == "created"  # never counted as ours
    # The customer pays the order they were given.
    stripe.succeed(created["gateway_order_id"])
    job = await reconciler(api, stack)

    await job.run_once(later())
    await job.run_once(later())

    view = await api.get(payment_id)
    assert (view["status"], view["gateway"], view["captured_amount"]) == (
        "captured",
        "stripe",
        50_000,
    )
    assert view["gateway_order_id"] == created["gateway_order_id"]
    assert len(await api.events(payment_id, "payment.success")) == 1
    # The stray capture went back, once.
    [refund] = [r for r in razorpay.refunds.values() if r["payment_id"] == paid_stray["id"]]
    assert refund["amount"] == 50_000
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "unknown", "GatewayUnavailable", True, "refunded"),
        (2, "stripe", "opened", None, False, None),
    ]


async def test_a_gateway_that_made_no_order_is_settled_as_no_stray(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    razorpay.drop_next(1, path="/v1/orders", method="POST")  # never reached Razorpay's books
    created = await (await routed(api, user)).json()

    await (await reconciler(api, stack)).run_once(later())

    assert orders_of(razorpay, created["payment_id"]) == []
    assert (await attempts(api, created["payment_id"]))[0] == (
        1,
        "razorpay",
        "unknown",
        "GatewayUnavailable",
        True,
        "none",
    )
    assert (await api.get(created["payment_id"]))["status"] == "created"


async def test_both_down_is_a_503_and_the_keyed_retry_goes_on_where_it_stopped(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    razorpay.fail_next(1, status=503, path="/v1/orders", method="POST")
    stripe.fail_next(1, status=503, path="/v1/payment_intents", method="POST")

    down = await routed(api, user, key="routed-down", order_id="ord_routed_down")
    retried = await routed(api, user, key="routed-down", order_id="ord_routed_down")

    assert (down.status, retried.status) == (503, 201)
    payment_id = (await down.json())["payment_id"]
    created = await retried.json()
    assert (created["payment_id"], created["gateway"]) == (payment_id, "stripe")
    assert orders_of(razorpay, payment_id) == []
    # Razorpay's possible order is watched as a stray; Stripe's, where the payment stayed, is
    # the one the retry looked for.
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "unknown", "GatewayUnavailable", True, None),
        (2, "stripe", "unknown", "GatewayUnavailable", False, None),
        (3, "stripe", "opened", None, False, None),
    ]


async def test_a_stripe_stray_is_found_under_our_fixed_key_and_closed_unpaid(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    stripe.delay_next(1, SLOW, path="/v1/payment_intents", method="POST")
    response = await routed(api, user, currency="USD")
    created = await response.json()
    payment_id = created["payment_id"]
    assert (response.status, created["gateway"]) == (201, "razorpay")
    [late] = await wait_for(lambda: intents_of(stripe, payment_id), message="the late intent")
    job = await reconciler(api, stack)

    await job.run_once(later())

    assert len(intents_of(stripe, payment_id)) == 1  # the repeat under our key made no second
    intent = stripe.payment_intents[late["id"]]
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")
    # Closed, it can take no money: settled, not watched for days.
    assert (await attempts(api, payment_id))[0][-1] == "closed"
    assert (await api.get(payment_id))["gateway_order_id"] == created["gateway_order_id"]


async def test_a_stripe_stray_the_customer_authorized_is_cancelled_releasing_the_hold(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    stripe.delay_next(1, SLOW, path="/v1/payment_intents", method="POST")
    response = await routed(api, user, currency="USD")
    payment_id = (await response.json())["payment_id"]
    [late] = await wait_for(lambda: intents_of(stripe, payment_id), message="the late intent")
    stripe.authorize(late["id"])  # paid on an order nobody was given: money held at Stripe

    await (await reconciler(api, stack)).run_once(later())

    intent = stripe.payment_intents[late["id"]]
    assert intent["status"] == "canceled"  # the authorisation released, nothing captured
    assert (await attempts(api, payment_id))[0][-1] == "closed"
    assert (await api.get(payment_id))["status"] == "created"  # its own order is untouched


async def test_of_two_orders_recorded_at_once_the_first_is_kept_and_the_other_watched(
    api: Api, user: str
) -> None:
    response = await api.create(user)  # a Razorpay order, recorded
    payment_id = (await response.json())["payment_id"]
    kept_order = (await response.json())["gateway_order_id"]

    async with api.pool.acquire() as conn:
        kept = await store.set_gateway_order(
            conn, payment_id, "pi_racing", gateway="stripe", latency_ms=7
        )
        moved = await attempt_store.failed(
            conn, payment_id, "stripe", Failure("unknown", "GatewayUnavailable", 9), "stripe"
        )

    assert (kept, moved) == (kept_order, False)
    view = await api.get(payment_id)
    assert (view["gateway"], view["gateway_order_id"]) == ("razorpay", kept_order)
    assert await attempts(api, payment_id) == [
        (1, "razorpay", "opened", None, False, None),
        (2, "stripe", "stray", None, True, None),
        (3, "stripe", "unknown", "GatewayUnavailable", True, None),
    ]
