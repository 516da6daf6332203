"""Razorpay webhooks through HTTP: signature on the raw body, dedupe, convergence, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from payments_testkit import Api

from payments.app import build_app
from rtmn_fakes.razorpay import RazorpayFake, build_webhook, sign_webhook
from rtmn_shared.db import Pool
from rtmn_shared.testing.plugin import ClientFactory


async def paid_order(api: Api, user: str) -> tuple[str, dict[str, Any]]:
    created, paid = await api.paid(user)
    return created["payment_id"], paid


async def test_captured_webhook_captures_and_emits_payment_success(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)

    response = await api.razorpay_webhook(
        razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    )

    assert response.status == 200
    assert (await response.json()) == {"status": "processed"}
    view = await api.get(payment_id)
    assert (view["status"], view["captured_amount"], view["gateway_payment_id"]) == (
        "captured",
        50_000,
        paid["id"],
    )
    [event] = await api.events(payment_id, "payment.success")
    assert event["payment_id"] == payment_id
    assert (event["user_id"], event["merchant_id"], event["order_number"]) == (
        user,
        "m_42",
        "R-1001",
    )
    assert (event["amount"], event["currency"], event["gateway"]) == (50_000, "INR", "razorpay")
    assert event["gateway_payment_id"] == paid["id"]


async def test_the_captures_event_continues_the_trace_of_the_create_not_of_the_webhook(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    trace_id = uuid.uuid4().hex
    created = await api.created(user, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    paid = razorpay.capture(created["gateway_order_id"])

    await api.razorpay_webhook(razorpay.build_webhook("payment.captured", payment_id=paid["id"]))

    traceparent = await pool.fetchval(
        "SELECT payload->>'traceparent' FROM outbox WHERE subject = $1 AND type = $2",
        created["payment_id"],
        "payment.success",
    )
    assert traceparent.split("-")[1] == trace_id


async def test_fifty_identical_concurrent_webhooks_capture_once(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)
    body = razorpay.build_webhook("payment.captured", payment_id=paid["id"])

    responses = await asyncio.gather(
        *(
            api.razorpay_webhook(body, event_id="evt_same_for_all_50_" + payment_id)
            for _ in range(50)
        )
    )

    assert [r.status for r in responses] == [200] * 50
    outcomes = [(await r.json())["status"] for r in responses]
    assert outcomes.count("processed") == 1
    assert (await api.get(payment_id))["status"] == "captured"
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_same_capture_under_new_event_ids_still_emits_once(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)

    for event in ("payment.captured", "order.paid", "payment.captured"):
        response = await api.razorpay_webhook(razorpay.build_webhook(event, payment_id=paid["id"]))
        assert response.status == 200

    assert len(await api.events(payment_id, "payment.success")) == 1


def reserialised(body: bytes) -> bytes:
    return json.dumps(json.loads(body)).encode()


def tampered(body: bytes) -> bytes:
    return body.replace(b'"amount":50000', b'"amount":50001', 1)


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ("reserialised", None),
        ("tampered", None),
        ("wrong_secret", None),
        (None, {"X-Razorpay-Event-Id": "evt_no_signature_0001"}),
        (None, {"X-Razorpay-Signature": "0" * 64, "X-Razorpay-Event-Id": "evt_zero_sig_0001"}),
    ],
)
async def test_bad_signatures_are_400_and_change_nothing(
    api: Api,
    razorpay: RazorpayFake,
    pool: Pool,
    user: str,
    change: str | None,
    headers: dict[str, str] | None,
) -> None:
    payment_id, paid = await paid_order(api, user)
    body = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    before = await pool.fetchval("SELECT count(*) FROM webhook_deliveries")

    if headers is not None:
        response = await api.client.post("/api/webhooks/razorpay", data=body, headers=headers)
    elif change == "wrong_secret":
        response = await api.razorpay_webhook(body, secret="whsec_someone_else")
    else:
        signature = sign_webhook(body, api.webhook_secret)
        sent = reserialised(body) if change == "reserialised" else tampered(body)
        assert sent != body
        response = await api.client.post(
            "/api/webhooks/razorpay",
            data=sent,
            headers={"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": "evt_b_" + user},
        )

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert (await api.get(payment_id))["status"] == "created"
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == before
    assert await api.events(payment_id) == []


async def test_missing_event_id_and_malformed_body_are_400(api: Api, pool: Pool) -> None:
    body = b'{"event": "payment.captured", "payload": {}}'
    signature = sign_webhook(body, api.webhook_secret)

    no_id = await api.client.post(
        "/api/webhooks/razorpay", data=body, headers={"X-Razorpay-Signature": signature}
    )
    malformed = await api.razorpay_webhook(body)
    not_json = await api.razorpay_webhook(b"{not json")

    assert (no_id.status, malformed.status, not_json.status) == (400, 400, 400)
    assert "malformed" in (await malformed.json())["detail"]


async def test_failed_after_captured_leaves_it_captured(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)
    captured = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    failed = razorpay.build_webhook("payment.failed", payment_id=paid["id"])

    assert (await api.razorpay_webhook(captured)).status == 200
    assert (await api.razorpay_webhook(failed)).status == 200

    assert (await api.get(payment_id))["status"] == "captured"
    assert [e["payment_id"] for e in await api.events(payment_id)] == [payment_id]
    assert await api.events(payment_id, "payment.failed") == []


async def test_failed_payment_emits_payment_failed(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created = await api.created(user)
    failed = razorpay.fail_payment(created["gateway_order_id"])

    response = await api.razorpay_webhook(
        razorpay.build_webhook("payment.failed", payment_id=failed["id"])
    )

    assert response.status == 200
    view = await api.get(created["payment_id"])
    assert (view["status"], view["error_code"]) == ("failed", failed["error_code"])
    [event] = await api.events(created["payment_id"], "payment.failed")
    assert (event["error_code"], event["amount"], event["user_id"]) == (
        failed["error_code"],
        50_000,
        user,
    )


async def test_authorized_then_captured_out_of_order_ends_captured(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)
    authorized = dict(paid, status="authorized", captured=False)
    late = build_webhook("payment.authorized", payment=authorized)
    await api.razorpay_webhook(razorpay.build_webhook("payment.captured", payment_id=paid["id"]))
    assert (await api.razorpay_webhook(late)).status == 200

    assert (await api.get(payment_id))["status"] == "captured"
    assert len(await api.events(payment_id)) == 1


async def test_amount_mismatch_marks_conflicted_without_an_event(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payment_id, paid = await paid_order(api, user)
    body = build_webhook("payment.captured", payment=dict(paid, amount=100))

    assert (await api.razorpay_webhook(body)).status == 200

    assert (await api.get(payment_id))["status"] == "conflicted"
    assert await api.events(payment_id) == []
    assert await pool.fetchval(
        "SELECT conflict_reason FROM payments WHERE id = $1", payment_id
    ) == ("gateway reported 100 INR, expected 50000 INR")


async def test_previous_secret_is_accepted_inside_the_rotation_window_only(
    api: Api,
    razorpay: RazorpayFake,
    http: ClientFactory,
    pool: Pool,
    user: str,
) -> None:
    inside, paid_inside = await paid_order(api, user)
    after, paid_after = await paid_order(api, user)
    expired = api.settings(
        razorpay_webhook_secret_previous_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    async with AsyncExitStack() as stack:
        late_client: TestClient = await http(await build_app(expired, stack))  # type: ignore[type-arg]

        accepted = await api.razorpay_webhook(
            razorpay.build_webhook("payment.captured", payment_id=paid_inside["id"]),
            secret=api.previous_webhook_secret,
        )
        refused = await api.razorpay_webhook(
            razorpay.build_webhook("payment.captured", payment_id=paid_after["id"]),
            secret=api.previous_webhook_secret,
            client=late_client,
        )
        current = await api.razorpay_webhook(
            razorpay.build_webhook("payment.captured", payment_id=paid_after["id"]),
            client=late_client,
        )

    assert (accepted.status, refused.status, current.status) == (200, 400, 200)
    assert (await api.get(inside))["status"] == "captured"
    assert (await api.get(after))["status"] == "captured"
    assert len(await api.events(after, "payment.success")) == 1


async def test_webhooks_about_nothing_of_ours_are_acknowledged_and_recorded(api: Api) -> None:
    stranger = {"id": "pay_NotOurs000001", "amount": 100, "currency": "INR", "order_id": "order_x"}
    bodies = [
        build_webhook("payment.captured", payment=stranger),
        build_webhook("refund.processed", refund={"id": "rfnd_NotOurs00001", "notes": []}),
    ]

    for n, body in enumerate(bodies):
        response = await api.razorpay_webhook(body, event_id=f"evt_stranger_{n}")
        assert response.status == 200
        assert (await response.json())["status"] == "processed"

    assert await api.deliveries_recorded("evt_stranger_0", "evt_stranger_1") == 2
