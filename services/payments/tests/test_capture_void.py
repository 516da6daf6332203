"""Manual capture and void of authorized payments through HTTP (`payments:capture`): under the
row lock, idempotent, racing the provider's webhooks, and never dropping money that arrives."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from payments_testkit import Api

from payments.app import build_app, build_gateways
from payments.reconcile import Reconciler
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake, sign_stripe_webhook
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.testing.plugin import ClientFactory
from rtmn_shared.testing.waiting import wait_for

OPERATOR = "payments:capture"


async def act(
    api: Api,
    payment_id: str,
    verb: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    scopes: str = OPERATOR,
) -> Any:
    headers = api.suite.bearer("ops_1", scopes)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post(
        f"/api/payments/{payment_id}/{verb}", json=body or {}, headers=headers
    )


async def ok(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def authorized_at_razorpay(api: Api, razorpay: RazorpayFake, user: str, **kw: Any) -> Any:
    """A payment authorized at Razorpay (not auto-captured) and known here by its webhook."""
    created = await api.created(user, **kw)
    paid = razorpay.authorize(created["gateway_order_id"])
    webhook = razorpay.build_webhook("payment.authorized", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    assert (await api.get(created["payment_id"]))["status"] == "authorized"
    return created, paid


async def stripe_webhook(api: Api, body: bytes) -> None:
    header = sign_stripe_webhook(body, api.stripe_webhook_secret)
    response = await api.client.post(
        "/api/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )
    assert response.status == 200, await response.text()


async def authorized_at_stripe(api: Api, stripe: StripeFake, user: str) -> dict[str, Any]:
    created: dict[str, Any] = await api.created(user, gateway="stripe")
    stripe.authorize(created["gateway_order_id"])
    event = stripe.build_event(
        "payment_intent.amount_capturable_updated", created["gateway_order_id"]
    )
    await stripe_webhook(api, event)
    assert (await api.get(created["payment_id"]))["status"] == "authorized"
    return created


async def test_an_operator_captures_an_authorized_payment_once(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]

    first = await ok(await act(api, payment_id, "capture"))
    again = await ok(await act(api, payment_id, "capture"))

    assert (first["status"], first["captured_amount"], first["paid_at"] is not None) == (
        "captured",
        50_000,
        True,
    )
    assert again == first  # answered as it is: the gateway is not asked a second time
    sent = razorpay.requests_to(f"/payments/{paid['id']}/capture", "POST")
    assert [r.json for r in sent] == [{"amount": 50_000, "currency": "INR"}]
    assert razorpay.payments[paid["id"]]["status"] == "captured"
    [event] = await api.events(payment_id, "payment.success")
    assert (event["amount"], event["gateway_payment_id"]) == (50_000, paid["id"])


async def test_a_capture_with_its_key_is_replayed_and_another_body_under_it_refused(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]

    first = await act(api, payment_id, "capture", key="cap-1")
    replay = await act(api, payment_id, "capture", key="cap-1")
    other = await act(api, payment_id, "capture", {"amount": 100}, key="cap-1")

    assert (await ok(first)) == (await ok(replay))
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert other.status == 422
    assert len(razorpay.requests_to(f"/payments/{paid['id']}/capture", "POST")) == 1
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_the_webhook_of_a_capture_arriving_before_its_answer_captures_once(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]
    razorpay.delay_next(1, 0.5, path="/capture", method="POST")

    capture = asyncio.create_task(act(api, payment_id, "capture"))
    await wait_for(lambda: razorpay.requests_to("/capture", "POST"), message="the capture sent")
    # Captured at Razorpay meanwhile (the Dashboard, say), and its webhook comes first.
    razorpay.capture_authorized(paid["id"])
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    answer = await ok(await capture)

    assert answer["status"] == "captured"
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_concurrent_captures_capture_once_and_all_answer_captured(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]

    answers = await asyncio.gather(*(act(api, payment_id, "capture") for _ in range(6)))

    assert [(await ok(a))["status"] for a in answers] == ["captured"] * 6
    assert len(await api.events(payment_id, "payment.success")) == 1
    assert razorpay.payments[paid["id"]]["status"] == "captured"


async def test_a_capture_the_gateway_did_not_answer_is_503_and_may_be_asked_again(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, _ = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]
    razorpay.fail_next(1, 503, path="/capture", method="POST")

    lost = await act(api, payment_id, "capture", key="cap-lost")

    assert lost.status == 503
    assert (await api.get(payment_id))["status"] == "authorized"
    assert (await ok(await act(api, payment_id, "capture", key="cap-lost")))["status"] == "captured"
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_razorpay_captures_only_the_whole_authorization_and_only_an_authorized_one(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    unpaid = await api.created(user)

    part = await act(api, created["payment_id"], "capture", {"amount": 20_000})
    too_much = await act(api, created["payment_id"], "capture", {"amount": 50_001})
    not_yet = await act(api, unpaid["payment_id"], "capture")
    missing = await act(api, "pmt_" + "0" * 32, "capture")
    bad = await act(api, created["payment_id"], "capture", {"amount": -1})

    assert (part.status, too_much.status, not_yet.status, missing.status) == (422, 422, 422, 404)
    assert bad.status == 422
    assert "whole authorization" in (await part.json())["detail"]
    assert razorpay.requests_to(f"/payments/{paid['id']}/capture", "POST") == []
    assert (await api.get(created["payment_id"]))["status"] == "authorized"


async def test_capture_and_void_need_the_capture_scope(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, _ = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]

    refused = [
        (await act(api, payment_id, verb, scopes=scopes)).status
        for verb in ("capture", "void")
        for scopes in ("", "admin", "payments:refund payments:read-any")
    ]

    assert refused == [403] * 6
    assert (await api.get(payment_id))["status"] == "authorized"


async def test_stripe_captures_part_of_an_authorization_and_its_webhook_agrees(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await authorized_at_stripe(api, stripe, user)
    payment_id, intent_id = created["payment_id"], created["gateway_order_id"]

    view = await ok(await act(api, payment_id, "capture", {"amount": 30_000}))
    await stripe_webhook(api, stripe.build_event("payment_intent.succeeded", intent_id))

    assert (view["status"], view["captured_amount"]) == ("captured", 30_000)
    assert (await api.get(payment_id))["status"] == "captured"  # not conflicted
    [sent] = stripe.requests_to(f"/payment_intents/{intent_id}/capture", "POST")
    assert sent.headers["Idempotency-Key"] == f"rtmn-capture-{payment_id}"
    assert stripe.payment_intents[intent_id]["amount_received"] == 30_000
    [event] = await api.events(payment_id, "payment.success")
    assert event["amount"] == 30_000


async def test_a_stripe_void_cancels_the_intent_once_and_frees_the_order(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await authorized_at_stripe(api, stripe, user)
    payment_id, intent_id = created["payment_id"], created["gateway_order_id"]

    first = await ok(await act(api, payment_id, "void"))
    again = await ok(await act(api, payment_id, "void"))
    capture = await act(api, payment_id, "capture")

    assert first["status"] == again["status"] == "voided"
    intent = stripe.payment_intents[intent_id]
    assert (intent["status"], intent["cancellation_reason"]) == (
        "canceled",
        "requested_by_customer",
    )
    assert len(stripe.requests_to(f"/payment_intents/{intent_id}/cancel", "POST")) == 1
    assert capture.status == 422
    assert await api.events(payment_id) == []
    # The order is free again: a new payment for it is made.
    second = await api.pay(user, first["order_id"], gateway="stripe")
    assert second.status == 201, await second.text()
    assert (await second.json())["payment_id"] != payment_id


async def test_a_razorpay_void_then_a_late_capture_keeps_the_money(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    payment_id = created["payment_id"]

    voided = await ok(await act(api, payment_id, "void", key="void-1"))
    replay = await act(api, payment_id, "void", key="void-1")
    # Razorpay has no void: the authorization stays there until it releases it, and someone
    # captures it after all; its webhook arrives.
    razorpay.capture_authorized(paid["id"])
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    void_again = await act(api, payment_id, "void")

    assert voided["status"] == "voided"
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert razorpay.requests_to(f"/payments/{paid['id']}/capture", "POST") == []
    view = await api.get(payment_id)
    assert (view["status"], view["captured_amount"]) == ("captured", 50_000)
    assert len(await api.events(payment_id, "payment.success")) == 1
    assert void_again.status == 422  # captured: it cannot be voided any more


async def test_a_void_the_gateway_did_not_answer_changes_nothing(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await authorized_at_stripe(api, stripe, user)
    payment_id = created["payment_id"]
    stripe.fail_next(1, 503, path="/cancel", method="POST")

    unanswered = await act(api, payment_id, "void")

    assert unanswered.status == 503
    assert (await api.get(payment_id))["status"] == "authorized"
    assert (await ok(await act(api, payment_id, "void")))["status"] == "voided"


async def test_a_void_that_loses_to_a_capture_at_stripe_is_409_and_keeps_the_money(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await authorized_at_stripe(api, stripe, user)
    payment_id, intent_id = created["payment_id"], created["gateway_order_id"]
    # Captured at Stripe (the Dashboard, say) before its webhook reached us.
    stripe.payment_intents[intent_id].update(status="succeeded", amount_received=50_000)

    refused = await act(api, payment_id, "void")

    assert refused.status == 409
    assert (await api.get(payment_id))["status"] == "captured"
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_with_manual_capture_a_paid_stripe_intent_waits_for_an_operator(
    api: Api, stripe: StripeFake, http: ClientFactory, user: str
) -> None:
    manual = api.settings(stripe_capture_method="manual")
    async with AsyncExitStack() as stack:
        client: TestClient = await http(await build_app(manual, stack))  # type: ignore[type-arg]
        await api.place_order(user, order_id := f"ord_manual_{user}")
        response = await client.post(
            "/api/payments/create",
            json={"order_id": order_id, "gateway": "stripe"},
            headers=api.suite.bearer(user),
        )
        assert response.status == 201, await response.text()
    created = await response.json()
    intent_id = created["gateway_order_id"]
    assert stripe.payment_intents[intent_id]["capture_method"] == "manual"
    stripe.authorize(intent_id)
    await stripe_webhook(
        api, stripe.build_event("payment_intent.amount_capturable_updated", intent_id)
    )
    assert (await api.get(created["payment_id"]))["status"] == "authorized"

    view = await ok(await act(api, created["payment_id"], "capture"))

    assert (view["status"], view["captured_amount"]) == ("captured", 50_000)
    assert stripe.payment_intents[intent_id]["status"] == "succeeded"


async def test_an_authorization_razorpay_released_uncaptured_is_voided_not_captured(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created, paid = await authorized_at_razorpay(api, razorpay, user)
    razorpay.release_authorized(paid["id"])  # nobody captured it within 3 days
    job = Reconciler(
        UnitOfWork(api.pool, lambda: None),
        await build_gateways(api.settings(), stack),
        after_seconds=0,
        batch=1_000,
    )

    await job.run_once(datetime.now(UTC) + timedelta(days=4))

    view = await api.get(created["payment_id"])
    assert (view["status"], view["captured_amount"]) == ("voided", 0)
    assert await api.events(created["payment_id"]) == []
