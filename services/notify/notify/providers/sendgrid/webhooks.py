"""SendGrid's signed Event Webhook: ECDSA P-256 / SHA-256 over timestamp + the raw body, then
the batch read into our email events. No I/O: the route verifies, parses and applies them."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.domain import EmailEvent
from notify.providers.sendgrid.wire import Event, email_event

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid posts a batch "every 30 seconds or when the batch size reaches 768 kilobytes": one
# more event can pass that, so 1 MiB, as nginx's client_max_body_size for the route.
SENDGRID_MAX_BODY_BYTES = 1024 * 1024


class WebhookKeyError(ValueError):
    pass


class BadBatch(ValueError):
    """The body is not a batch of events; its message is safe to answer with."""


@dataclass(frozen=True)
class Batch:
    received: int  # the array's length, objects or not
    events: list[EmailEvent]  # its objects, in order


def parse_batch(raw: bytes) -> Batch:
    """A verified body as our events; an element that is not an object is skipped."""
    try:
        events: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadBatch("the event batch is not valid JSON") from None
    if not isinstance(events, list):
        raise BadBatch("the event batch must be a JSON array")
    ours = [email_event(cast(Event, e)) for e in events if isinstance(e, dict)]
    return Batch(received=len(events), events=ours)


class EventWebhookVerifier:
    def __init__(self, public_key_b64: str | None, *, tolerance_seconds: int = 0) -> None:
        self._key = _load(public_key_b64) if public_key_b64 else None
        # 0: accept any age. Replays are harmless here (statuses only move forward).
        self._tolerance = tolerance_seconds

    @property
    def configured(self) -> bool:
        return self._key is not None

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> bool:
        if self._key is None or not signature or not timestamp:
            return False
        if self._tolerance and not _recent(timestamp, self._tolerance):
            return False
        try:
            self._key.verify(
                base64.b64decode(signature, validate=True),
                timestamp.encode() + body,
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def _load(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    except (binascii.Error, ValueError) as error:
        raise WebhookKeyError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key"
        ) from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookKeyError("SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 key")
    return key


def _recent(timestamp: str, tolerance: int) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
