"""Razorpay's webhook bodies and signatures, for tests that play Razorpay calling us."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load

TEMPLATES = {
    "payment.authorized": "webhook.payment.authorized.upi.json",
    "payment.captured": "webhook.payment.captured.upi.json",
    "payment.failed": "webhook.payment.failed.upi.json",
    "order.paid": "webhook.order.paid.upi.json",
    "refund.processed": "webhook.refund.processed.json",
    "refund.failed": "webhook.refund.failed.json",
    **{
        f"payment.dispute.{state}": f"webhook.payment.dispute.{state}.json"
        for state in ("created", "won", "lost", "closed", "under_review", "action_required")
    },
    "qr_code.credited": "webhook.qr_code.credited.json",
    "qr_code.closed": "webhook.qr_code.closed.json",
}


def sign_webhook(body: bytes, secret: str) -> str:
    """X-Razorpay-Signature: hex HMAC-SHA256 of the raw body under the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def checkout_signature(order_id: str, payment_id: str, key_secret: str) -> str:
    """The razorpay_signature Checkout hands the browser after a successful payment."""
    message = f"{order_id}|{payment_id}".encode()
    return hmac.new(key_secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, secret: str, event_id: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": sign_webhook(body, secret),
        "X-Razorpay-Event-Id": event_id or next_id("evt_"),
    }


def build_webhook(
    event: str,
    *,
    payment: Mapping[str, Any] | None = None,
    order: Mapping[str, Any] | None = None,
    refund: Mapping[str, Any] | None = None,
    dispute: Mapping[str, Any] | None = None,
    qr_code: Mapping[str, Any] | None = None,
    account_id: str | None = None,
    created_at: int | None = None,
) -> bytes:
    """The raw body of `event`, from Razorpay's published sample with the given entities.

    Entities not given keep the sample's values; `created_at` defaults to now, as Razorpay stamps
    an event when it happens (the sample's is years old). The body is compact JSON, unlike
    Python's default `json.dumps`, so a receiver that re-serialises before verifying fails the
    check.
    """
    if event not in TEMPLATES:
        raise ValueError(f"no published sample for {event!r}; known: {sorted(TEMPLATES)}")
    envelope = load("razorpay", TEMPLATES[event])
    given = {
        "payment": payment,
        "order": order,
        "refund": refund,
        "dispute": dispute,
        "qr_code": qr_code,
    }
    for name in envelope["contains"]:
        entity = given[name]
        if entity is not None:
            envelope["payload"][name]["entity"] = dict(entity)
    if account_id is not None:
        envelope["account_id"] = account_id
    envelope["created_at"] = int(time.time()) if created_at is None else created_at
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
