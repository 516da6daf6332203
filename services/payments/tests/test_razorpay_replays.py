"""A signed Razorpay body replayed by someone who is not Razorpay: the event id header is outside
the signature, so the body's digest is what recognises it; past Razorpay's 24 h of retries, no
copy is a retry at all."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

from payments_testkit import Api

from payments.webhooks import MAX_BODY_BYTES
from rtmn_fakes.razorpay import RazorpayFake, build_webhook, sign_webhook

HOUR = 3600
URL = "/api/webhooks/razorpay"


async def test_the_same_signed_body_under_a_new_event_id_is_a_duplicate(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await api.paid(user)
    body = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    first, forged = f"evt_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"

    answers = [await api.razorpay_webhook(body, event_id=e) for e in (first, forged, forged)]

    assert [(await a.json())["status"] for a in answers] == ["processed", "duplicate", "duplicate"]
    assert await api.deliveries_recorded(first, forged) == 1
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_twenty_concurrent_copies_under_twenty_event_ids_apply_once(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await api.paid(user)
    body = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    ids = [f"evt_{uuid.uuid4().hex}" for _ in range(20)]

    answers = await asyncio.gather(*(api.razorpay_webhook(body, event_id=e) for e in ids))

    statuses = [(await a.json())["status"] for a in answers]
    assert sorted(statuses) == ["duplicate"] * 19 + ["processed"]
    assert await api.deliveries_recorded(*ids) == 1
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_razorpay_body_older_than_its_retries_is_refused_and_changes_nothing(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await api.paid(user)
    stale = build_webhook("payment.captured", payment=paid, created_at=int(time.time()) - 30 * HOUR)
    event_id = f"evt_{uuid.uuid4().hex}"

    response = await api.razorpay_webhook(stale, event_id=event_id)

    assert response.status == 200  # a retry cannot make it younger
    answer = await response.json()
    assert answer["status"] == "refused"
    assert "24 hours" in answer["reason"]
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.events(created["payment_id"]) == []
    assert await api.deliveries_recorded(event_id) == 0


async def test_a_razorpay_retry_within_its_24_hours_is_applied(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await api.paid(user)
    late = build_webhook("payment.captured", payment=paid, created_at=int(time.time()) - 20 * HOUR)

    response = await api.razorpay_webhook(late, event_id=f"evt_{uuid.uuid4().hex}")

    assert (await response.json())["status"] == "processed"
    assert (await api.get(created["payment_id"]))["status"] == "captured"


async def test_a_webhook_body_up_to_the_gateways_cap_is_read_and_a_larger_one_is_413(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    # Razorpay's payloads are small, but one with long notes must not stop at the 64 KiB cap
    # of every other route while nginx lets 1 MiB through.
    _, paid = await api.paid(user)
    noted = {**paid, "notes": {"note": "n" * 200_000}}
    body = build_webhook("payment.captured", payment=noted, created_at=int(time.time()))

    response = await api.razorpay_webhook(body, event_id=f"evt_{uuid.uuid4().hex}")
    assert (await response.json())["status"] == "processed"

    too_big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = {"X-Razorpay-Signature": sign_webhook(too_big, "whsec_razorpay_current")}
    refused = await api.client.post(URL, data=io.BytesIO(too_big), headers=headers)
    assert refused.status == 413
    assert refused.content_type == "application/problem+json"
