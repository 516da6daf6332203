"""Refunds through HTTP: limits under the row lock, the gateway's idempotency, events."""

from __future__ import annotations

import asyncio
from typing import Any

from payments_testkit import Api

from rtmn_fakes.razorpay import RazorpayFake


async def captured_payment(api: Api, user: str) -> str:
    created, _ = await api.captured(user)
    payment_id: str = created["payment_id"]
    return payment_id


async def refund(api: Api, payment_id: str, amount: int | None = None, **kw: Any) -> dict[str, Any]:
    response = await api.refund(payment_id, amount, **kw)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def processed(api: Api, razorpay: RazorpayFake, gateway_refund_id: str) -> None:
    razorpay.set_refund_status(gateway_refund_id, "processed")
    webhook = razorpay.build_webhook("refund.processed", refund_id=gateway_refund_id)
    assert (await api.razorpay_webhook(webhook)).status == 200


async def test_partial_refunds_summing_to_the_whole_mark_it_refunded(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)

    first = await refund(api, payment_id, 20_000)
    assert first["status"] == "pending"
    assert (await api.get(payment_id))["status"] == "captured"  # pending until processed
    await processed(api, razorpay, first["gateway_refund_id"])
    assert (await api.get(payment_id))["status"] == "partially_refunded"
    rest = await refund(api, payment_id)  # no amount: all that is left
    await processed(api, razorpay, rest["gateway_refund_id"])

    view = await api.get(payment_id)
    assert (view["status"], view["refunded_total"]) == ("refunded", 50_000)
    assert [(r["amount"], r["status"]) for r in view["refunds"]] == [
        (20_000, "processed"),
        (30_000, "processed"),
    ]
    emitted = await api.events(payment_id, "payment.refunded")
    assert [(e["refund_id"], e["amount"], e["refunded_total"], e["full"]) for e in emitted] == [
        (first["refund_id"], 20_000, 20_000, False),
        (rest["refund_id"], 30_000, 50_000, True),
    ]
    # The gateway's refund was keyed on our refund id, so a retry could never refund twice.
    sent = razorpay.requests_to("/refund", "POST")
    assert {r.headers["X-Refund-Idempotency"] for r in sent} >= {
        first["refund_id"],
        rest["refund_id"],
    }


async def test_a_repeated_refund_processed_webhook_emits_nothing_more(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)
    made = await refund(api, payment_id, 10_000)

    await processed(api, razorpay, made["gateway_refund_id"])
    await processed(api, razorpay, made["gateway_refund_id"])  # new event id, same refund

    assert len(await api.events(payment_id, "payment.refunded")) == 1


async def test_over_refund_is_422_and_changes_nothing(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)

    response = await api.refund(payment_id, 50_001)

    assert response.status == 422
    assert "exceeds" in (await response.json())["detail"]
    assert (await api.get(payment_id))["refunds"] == []


async def test_ten_concurrent_partial_refunds_never_exceed_the_capture(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)

    responses = await asyncio.gather(*(api.refund(payment_id, 8_000) for _ in range(10)))

    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 6 + [422] * 4
    refunds = (await api.get(payment_id))["refunds"]
    assert sum(r["amount"] for r in refunds) == 48_000


async def test_refund_idempotency_key_returns_the_first_refund(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)

    first = await refund(api, payment_id, 5_000, key="refund-key-1")
    again = await refund(api, payment_id, 5_000, key="refund-key-1")
    other = await api.refund(payment_id, 6_000, key="refund-key-1")

    assert again == first
    assert other.status == 422
    assert len((await api.get(payment_id))["refunds"]) == 1


async def test_failed_refund_frees_the_amount_and_emits_nothing(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id = await captured_payment(api, user)
    lost = await refund(api, payment_id)
    razorpay.set_refund_status(lost["gateway_refund_id"], "failed")

    webhook = razorpay.build_webhook("refund.failed", refund_id=lost["gateway_refund_id"])
    assert (await api.razorpay_webhook(webhook)).status == 200

    view = await api.get(payment_id)
    assert (view["status"], view["refunds"][0]["status"]) == ("captured", "failed")
    assert await api.events(payment_id, "payment.refunded") == []
    again = await api.refund(payment_id)
    assert again.status == 201


async def test_refunds_need_the_refund_scope_and_a_captured_payment(api: Api, user: str) -> None:
    created = await api.created(user)
    path = f"/api/payments/{created['payment_id']}/refunds"

    refused = [
        (await api.client.post(path, json={}, headers=api.suite.bearer(user, scopes))).status
        for scopes in ("", "admin", "payments:read-any notify:send service")
    ]
    not_paid = await api.refund(created["payment_id"])
    missing = await api.refund("pmt_missing")

    assert refused == [403, 403, 403]
    assert (not_paid.status, missing.status) == (422, 404)


async def test_another_users_payment_is_readable_only_with_the_read_any_scope(
    api: Api, user: str
) -> None:
    created = await api.created(user)
    path = f"/api/payments/{created['payment_id']}"
    for scopes, status in (("", 404), ("admin payments:refund", 404), ("payments:read-any", 200)):
        response = await api.client.get(path, headers=api.suite.bearer("stranger", scopes))
        assert response.status == status, scopes
        upi = await api.client.get(f"{path}/upi", headers=api.suite.bearer("stranger", scopes))
        assert upi.status in ((404,) if status == 404 else (200, 422)), scopes
