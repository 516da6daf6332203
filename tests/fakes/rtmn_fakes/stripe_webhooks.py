"""Stripe's webhook events and the Stripe-Signature header that `construct_event` checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load


def sign_stripe_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`t=<ts>,v1=<hex HMAC-SHA256(secret, f"{ts}.{payload}")>`; pass an old `timestamp`
    to test the receiver's 300 s tolerance."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def build_event(
    type: str,
    object: Mapping[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    api_version: str | None = None,
) -> bytes:
    """The raw body of an Event wrapping `object`, shaped like Stripe's published example."""
    event = load("stripe", "event.docs_example.setup_intent.created.json")
    event.update(
        id=event_id or next_id("evt_", 24),
        type=type,
        created=int(time.time()) if created is None else created,
        data={"object": dict(object)},
    )
    if api_version is not None:
        event["api_version"] = api_version
    return json.dumps(event, indent=2).encode()
