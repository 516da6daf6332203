"""SendGrid's signed Event Webhook: event batches and their ECDSA signatures."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EVENT_KINDS = frozenset(
    {
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "blocked",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
    }
)


class EventWebhookSigner:
    """Plays SendGrid's side: a P-256 key whose public half the receiver is configured with."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = private_key or ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """Base64 DER SubjectPublicKeyInfo, as SendGrid's settings page shows it."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, payload: bytes, timestamp: str) -> str:
        signature = self._key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, payload: bytes, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(payload, ts),
            TIMESTAMP_HEADER: ts,
        }


def verify_event_signature(public_key: str, payload: bytes, signature: str, timestamp: str) -> bool:
    """The receiver's check, for tests of the signer against published vectors."""
    key = serialization.load_der_public_key(base64.b64decode(public_key))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + payload, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def build_events(
    *kinds: str,
    email: str = "example@test.com",
    sg_message_id: str | None = None,
    custom_args: Mapping[str, str] | None = None,
    timestamp: int | None = None,
    **fields: Any,
) -> bytes:
    """A batch body with one event per kind, each from SendGrid's published example.

    Every event gets a fresh `sg_event_id` (the dedupe key); `custom_args` appear as
    top-level keys, as SendGrid delivers them. The body ends in CRLF like the published
    signed sample, so a receiver that strips the body before verifying fails.
    """
    events = [
        event(
            kind,
            email=email,
            sg_message_id=sg_message_id,
            custom_args=custom_args,
            timestamp=timestamp,
            **fields,
        )
        for kind in kinds
    ]
    return json.dumps(events, separators=(",", ":")).encode() + b"\r\n"


def event(
    kind: str,
    *,
    email: str,
    sg_message_id: str | None,
    custom_args: Mapping[str, str] | None,
    timestamp: int | None,
    **fields: Any,
) -> dict[str, Any]:
    """One event from SendGrid's published example of `kind`; `fields` override its own (a
    bounce's `type`, `bounce_classification`, a drop's `reason`)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"no published example for {kind!r}; known: {sorted(EVENT_KINDS)}")
    [sample] = load("sendgrid", f"event_webhook.{kind}.json")
    sample.pop("category", None)  # only present when the mail was sent with categories
    sample.update(email=email, sg_event_id=next_id("", 22))
    if timestamp is not None:
        sample["timestamp"] = timestamp
    if sg_message_id is not None:
        sample["sg_message_id"] = sg_message_id
    sample.update(custom_args or {})
    sample.update(fields)
    return dict(sample)
