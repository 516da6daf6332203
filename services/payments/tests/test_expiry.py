"""Auto-expiry: a created payment nobody paid within PAYMENT_EXPIRY_SECONDS is asked about one
last time, expired under its row lock, its order closed where the gateway can, and no longer
asked about; money that arrives meanwhile or later is captured, never dropped."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from payments_testkit import Api

from payments.app import build_gateways
from payments.reconcile import Reconciler
from payments.settings import Settings
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake, sign_stripe_webhook
from rtmn_shared.events.wakeup import UnitOfWork

EXPIRY = 1_800


async def reconciler(api: Api, stack: AsyncExitStack) -> Reconciler:
    gateways = await build_gateways(api.settings(), stack)
    return Reconciler(
        UnitOfWork(api.pool, lambda: None),
        gateways,
        after_seconds=86_400,
        batch=1_000,
        expire_after_seconds=EXPIRY,
    )


async def made_long_ago(api: Api, payment_id: str, seconds: int = EXPIRY + 60) -> None:
    """The payment was created `seconds` ago (and untouched since)."""
    await api.pool.execute(
        """UPDATE payments SET created_at = now() - make_interval(secs => $2),
               updated_at = now() - make_interval(secs => $2) WHERE id = $1""",
        payment_id,
        seconds,
    )


async def test_an_unpaid_stripe_payment_expires_its_intent_is_cancelled_and_its_order_freed(
    api: Api, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    payment_id, intent_id = created["payment_id"], created["gateway_order_id"]
    await made_long_ago(api, payment_id)
    job = await reconciler(api, stack)

    report = await job.run_once()

    assert report.expired >= 1
    view = await api.get(payment_id)
    assert view["status"] == "expired"
    assert await api.events(payment_id) == []
    intent = stripe.payment_intents[intent_id]
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")
    # Stripe then tells of the cancellation: our own doing, not a failed payment.
    body = stripe.build_event("payment_intent.canceled", intent_id)
    headers = {"Stripe-Signature": sign_stripe_webhook(body, api.stripe_webhook_secret)}
    assert (await api.client.post("/api/webhooks/stripe", data=body, headers=headers)).status == 200
    assert (await api.get(payment_id))["status"] == "expired"
    assert await api.events(payment_id) == []
    # Expired is final for reconciliation: the next pass does not ask about it again.
    asked = len(stripe.requests_to(f"/payment_intents/{intent_id}", "GET"))
    await job.run_once()
    assert len(stripe.requests_to(f"/payment_intents/{intent_id}", "GET")) == asked
    again = await api.pay(user, view["order_id"], gateway="stripe")
    assert again.status == 201, await again.text()


async def test_a_young_payment_is_not_expired(api: Api, stack: AsyncExitStack, user: str) -> None:
    created = await api.created(user)
    await made_long_ago(api, created["payment_id"], EXPIRY - 60)

    await (await reconciler(api, stack)).run_once()

    assert (await api.get(created["payment_id"]))["status"] == "created"


async def test_a_payment_paid_before_expiry_is_captured_not_expired(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user)
    await made_long_ago(api, created["payment_id"])
    paid = razorpay.capture(created["gateway_order_id"])  # its webhook never came

    report = await (await reconciler(api, stack)).run_once()

    assert report.settled >= 1
    view = await api.get(created["payment_id"])
    assert (view["status"], view["gateway_payment_id"]) == ("captured", paid["id"])
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_stripe_payment_paid_before_expiry_is_captured_and_its_intent_left_alone(
    api: Api, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    intent_id = created["gateway_order_id"]
    await made_long_ago(api, created["payment_id"])
    stripe.succeed(intent_id)

    await (await reconciler(api, stack)).run_once()

    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert stripe.requests_to(f"/payment_intents/{intent_id}/cancel", "POST") == []


async def test_a_payment_that_arrives_after_expiry_is_captured_once(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user)
    payment_id = created["payment_id"]
    await made_long_ago(api, payment_id)
    await (await reconciler(api, stack)).run_once()
    assert (await api.get(payment_id))["status"] == "expired"

    # A Razorpay order cannot be cancelled: the customer pays it after all.
    paid = razorpay.capture(created["gateway_order_id"])
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    assert (await api.razorpay_webhook(webhook)).status == 200

    view = await api.get(payment_id)
    assert (view["status"], view["captured_amount"]) == ("captured", 50_000)
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_a_gateway_that_does_not_answer_leaves_it_for_the_next_pass(
    api: Api, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    payment_id, intent_id = created["payment_id"], created["gateway_order_id"]
    await made_long_ago(api, payment_id)
    job = await reconciler(api, stack)
    stripe.fail_next(1, 503, path=f"/payment_intents/{intent_id}", method="GET")

    first = await job.run_once()

    assert first.unknown >= 1
    assert (await api.get(payment_id))["status"] == "created"
    await job.run_once()
    assert (await api.get(payment_id))["status"] == "expired"


def test_the_expiry_is_half_an_hour_unless_set_and_at_least_a_minute() -> None:
    assert Settings().payment_expiry_seconds == 1_800
    assert Settings(payment_expiry_seconds=900).payment_expiry_seconds == 900
    with pytest.raises(ValueError, match="greater than or equal to 60"):
        Settings(payment_expiry_seconds=59)


async def test_an_unpaid_upi_payment_expires_and_its_qr_code_is_closed(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user, gateway="upi")
    payment_id, qr_id = created["payment_id"], created["gateway_order_id"]
    await made_long_ago(api, payment_id)

    await (await reconciler(api, stack)).run_once()

    assert (await api.get(payment_id))["status"] == "expired"
    code = razorpay.qr.codes[qr_id]
    assert (code["status"], code["close_reason"]) == ("closed", "on_demand")
    with pytest.raises(ValueError, match="closed"):
        razorpay.pay_qr_code(qr_id)  # a customer scanning it now cannot pay
