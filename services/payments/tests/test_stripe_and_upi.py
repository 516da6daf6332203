"""Stripe PaymentIntents and webhooks, and UPI links with their QR codes, through HTTP."""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from payments_testkit import Api

from payments.app import build_app
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake, build_event, sign_stripe_webhook
from rtmn_shared.testing.plugin import ClientFactory


async def stripe_webhook(
    api: Api,
    body: bytes,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    client: TestClient | None = None,  # type: ignore[type-arg]
) -> Any:
    header = sign_stripe_webhook(body, secret or api.stripe_webhook_secret, timestamp)
    return await (client or api.client).post(
        "/api/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )


async def test_stripe_create_returns_the_client_secret_of_one_keyed_intent(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await api.created(user, gateway="stripe")

    intent = stripe.payment_intents[created["gateway_order_id"]]
    assert created["checkout"] == {"client_secret": intent["client_secret"]}
    assert (intent["amount"], intent["currency"]) == (50_000, "inr")
    assert intent["metadata"]["payment_id"] == created["payment_id"]
    [sent] = stripe.requests_to("/v1/payment_intents", "POST")[-1:]
    assert sent.headers["Idempotency-Key"] == f"rtmn-payment-{created['payment_id']}"


async def test_succeeded_intent_webhook_captures_once(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    stripe.succeed(created["gateway_order_id"])
    body = stripe.build_event("payment_intent.succeeded", created["gateway_order_id"])

    first = await stripe_webhook(api, body)
    again = await stripe_webhook(api, body)

    assert (first.status, again.status) == (200, 200)
    assert (await again.json())["status"] == "duplicate"
    view = await api.get(created["payment_id"])
    assert (view["status"], view["captured_amount"]) == ("captured", 50_000)
    [event] = await api.events(created["payment_id"], "payment.success")
    assert (event["gateway"], event["amount"], event["currency"]) == ("stripe", 50_000, "INR")


async def test_payment_failed_webhook_fails_the_payment(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    intent = dict(
        stripe.payment_intents[created["gateway_order_id"]],
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )

    response = await stripe_webhook(api, build_event("payment_intent.payment_failed", intent))

    assert response.status == 200
    [event] = await api.events(created["payment_id"], "payment.failed")
    assert (event["error_code"], event["gateway"]) == ("card_declined", "stripe")


@pytest.mark.parametrize("fault", ["stale", "wrong_secret", "missing", "tampered"])
async def test_bad_stripe_signatures_are_400_and_change_nothing(
    api: Api, stripe: StripeFake, user: str, fault: str
) -> None:
    created = await api.created(user, gateway="stripe")
    stripe.succeed(created["gateway_order_id"])
    body = stripe.build_event("payment_intent.succeeded", created["gateway_order_id"])

    if fault == "stale":
        response = await stripe_webhook(api, body, timestamp=int(time.time()) - 301)
    elif fault == "wrong_secret":
        response = await stripe_webhook(api, body, secret="whsec_not_ours")
    elif fault == "missing":
        response = await api.client.post("/api/webhooks/stripe", data=body)
    else:
        header = sign_stripe_webhook(body, api.stripe_webhook_secret)
        changed = json.dumps(json.loads(body)).encode()
        response = await api.client.post(
            "/api/webhooks/stripe", data=changed, headers={"Stripe-Signature": header}
        )

    assert response.status == 400
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.events(created["payment_id"]) == []


async def test_previous_stripe_secret_is_accepted_inside_the_rotation_window_only(
    api: Api, stripe: StripeFake, http: ClientFactory, user: str
) -> None:
    inside = await api.created(user, gateway="stripe")
    after = await api.created(user, gateway="stripe")
    for created in (inside, after):
        stripe.succeed(created["gateway_order_id"])
    expired = api.settings(
        stripe_webhook_secret_previous_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    previous = api.previous_stripe_webhook_secret
    async with AsyncExitStack() as stack:
        late_client: TestClient = await http(await build_app(expired, stack))  # type: ignore[type-arg]

        accepted = await stripe_webhook(
            api,
            stripe.build_event("payment_intent.succeeded", inside["gateway_order_id"]),
            secret=previous,
        )
        late = stripe.build_event("payment_intent.succeeded", after["gateway_order_id"])
        refused = await stripe_webhook(api, late, secret=previous, client=late_client)
        assert (await api.get(after["payment_id"]))["status"] == "created"
        current = await stripe_webhook(api, late, client=late_client)

    assert (accepted.status, refused.status, current.status) == (200, 400, 200)
    assert (await api.get(inside["payment_id"]))["status"] == "captured"
    assert len(await api.events(after["payment_id"], "payment.success")) == 1


async def test_stripe_refund_is_keyed_and_processed_at_once(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    stripe.succeed(created["gateway_order_id"])
    body = stripe.build_event("payment_intent.succeeded", created["gateway_order_id"])
    assert (await stripe_webhook(api, body)).status == 200

    response = await api.refund(created["payment_id"], 20_000)

    assert response.status == 201
    made = await response.json()
    assert made["status"] == "processed"  # Stripe's refund succeeded in its answer
    sent = stripe.requests_to("/v1/refunds", "POST")[-1]
    assert sent.headers["Idempotency-Key"] == f"rtmn-refund-{made['refund_id']}"
    [event] = await api.events(created["payment_id"], "payment.refunded")
    assert (event["amount"], event["refunded_total"], event["full"]) == (20_000, 20_000, False)
    # The refund.updated webhook that follows is absorbed.
    update = stripe.build_event("refund.updated", made["gateway_refund_id"])
    assert (await stripe_webhook(api, update)).status == 200
    assert len(await api.events(created["payment_id"], "payment.refunded")) == 1


async def test_upi_create_gives_the_link_and_qr_codes(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    razorpay.qr.image_content = True  # an account whose codes carry their upi:// link
    try:
        created = await api.created(user, gateway="upi", amount=123_405)
    finally:
        razorpay.qr.image_content = False
    code = razorpay.qr.codes[created["gateway_order_id"]]

    link = created["upi"]["link"]
    scheme, _, _, query, _ = urlsplit(link)
    params = dict(parse_qsl(query))
    assert scheme == "upi"
    assert link == code["image_content"]  # Razorpay's payee and reference: Razorpay sees it
    assert "okaxis" not in json.dumps(created)
    assert "+" not in link
    assert params["tr"].isalnum()
    assert len(params["tr"]) <= 35
    assert (params["am"], params["cu"]) == ("1234.05", "INR")
    assert (created["upi"]["qr_code_id"], created["upi"]["image_url"]) == (
        code["id"],
        code["image_url"],
    )

    headers = api.suite.bearer(user)
    path = f"/api/payments/{created['payment_id']}/upi"
    as_json = await api.client.get(path, headers=headers)
    svg = await api.client.get(path + "?format=svg", headers=headers)
    png = await api.client.get(path + "?format=png", headers=headers)
    bad = await api.client.get(path + "?format=gif", headers=headers)

    assert (await as_json.json())["link"] == link
    assert svg.content_type == "image/svg+xml"
    assert b"<svg" in await svg.read()
    assert png.content_type == "image/png"
    assert (await png.read()).startswith(b"\x89PNG")
    assert bad.status == 400


async def test_upi_payment_is_confirmed_only_by_the_gateway_webhook(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user, gateway="upi")
    paid = razorpay.pay_qr_code(created["gateway_order_id"])

    assert (await api.get(created["payment_id"]))["status"] == "created"
    webhook = razorpay.build_webhook("qr_code.credited", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200

    [event] = await api.events(created["payment_id"], "payment.success")
    assert event["gateway"] == "upi"
    assert event["gateway_payment_id"] == paid["id"]
