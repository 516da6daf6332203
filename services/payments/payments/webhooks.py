"""Webhook signatures and payloads: checked on the raw bytes first, then read into signals.

No I/O here: the endpoint verifies, parses, and hands a `Command` to `inbound.handle`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import stripe
from pydantic import SecretStr

from payments.disputes import DisputeCommand, razorpay_dispute, stripe_dispute
from payments.domain import Authorized, Captured, Failed, Signal
from payments.providers.stripe import intent_signal

# A webhook body's cap, as nginx's client_max_body_size for the webhook locations (1m).
MAX_BODY_BYTES = 1024 * 1024

# Razorpay retries a failed delivery "for 24 hours after event creation timestamp" (its webhook
# best practices), so an older signed body is a replay, never a retry; an hour for clock skew.
RAZORPAY_MAX_AGE = timedelta(hours=25)
RAZORPAY_TOO_OLD = (
    "older than Razorpay retries a webhook (24 hours after its created_at): a replay, not a retry"
)


class BadWebhook(Exception):
    """Signature, header or body not acceptable: a 400, and nothing changes."""


@dataclass(frozen=True)
class Secrets:
    """The current webhook secret and, until `previous_until`, the one it replaced.

    One rotation window for every provider: no date, or a date passed, refuses the previous one.
    """

    current: bytes | None
    previous: bytes | None = None
    previous_until: datetime | None = None

    @classmethod
    def of(
        cls,
        current: SecretStr | None,
        previous: SecretStr | None = None,
        previous_until: datetime | None = None,
    ) -> Secrets:
        return cls(_bytes(current), _bytes(previous), previous_until)

    def valid(self, now: datetime) -> list[bytes]:
        found = [self.current] if self.current else []
        if self.previous and self.previous_until is not None and now < self.previous_until:
            found.append(self.previous)
        return found


def _bytes(secret: SecretStr | None) -> bytes | None:
    return secret.get_secret_value().encode() if secret else None


@dataclass(frozen=True)
class PaymentCommand:
    gateway_order_id: str
    signal: Signal


@dataclass(frozen=True)
class RefundCommand:
    gateway_refund_id: str
    refund_id: str | None  # ours, from the notes/metadata we sent with the refund
    processed: bool


@dataclass(frozen=True)
class Ignored:
    reason: str


Command = PaymentCommand | RefundCommand | DisputeCommand | Ignored


def verify_razorpay(body: bytes, signature: str | None, secrets: Secrets, now: datetime) -> None:
    if not signature:
        raise BadWebhook("the X-Razorpay-Signature header is missing")
    given = signature.strip().encode("ascii", "replace")
    for secret in secrets.valid(now):
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            return
    raise BadWebhook("the webhook signature does not match")


def parse_razorpay(body: bytes) -> tuple[str, datetime, Command]:
    """The event type, when Razorpay made the event, and what it asks of us."""
    if b"\\u0000" in body:
        raise BadWebhook("the webhook body carries a NUL character")
    try:
        envelope = orjson.loads(body)
        event = envelope["event"]
        if not isinstance(event, str):
            raise TypeError("event")
        created = _timestamp(envelope["created_at"])
        return event, created, _razorpay_command(event, envelope)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise BadWebhook(f"the webhook body is malformed ({type(error).__name__})") from None


def _razorpay_command(event: str, envelope: dict[str, Any]) -> Command:
    payload = envelope["payload"]
    if event.startswith("payment.dispute."):
        return razorpay_dispute(payload) or Ignored(event)
    if event in ("refund.processed", "refund.failed"):
        refund = payload["refund"]["entity"]
        notes = refund.get("notes")
        ours = notes.get("refund_id") if isinstance(notes, dict) else None
        return RefundCommand(str(refund["id"]), ours, event == "refund.processed")
    payment = payload["payment"]["entity"] if "payment" in payload else {}
    if event == "qr_code.credited":
        # A UPI payment to our QR code: no order, the code's id names our payment.
        return _qr_credited(envelope, payment, payload["qr_code"]["entity"])
    order_id = payment.get("order_id")
    signal = _razorpay_signal(event, envelope, payment)
    if signal is None or not isinstance(order_id, str):
        return Ignored(event)
    return PaymentCommand(order_id, signal)


def _razorpay_signal(
    event: str, envelope: dict[str, Any], payment: dict[str, Any]
) -> Signal | None:
    if event == "payment.failed":
        return Failed(
            str(payment["id"]), payment.get("error_code"), payment.get("error_description")
        )
    if event not in ("payment.authorized", "payment.captured", "order.paid"):
        return None
    amount, currency = int(payment["amount"]), str(payment["currency"])
    if event == "payment.authorized":
        return Authorized(str(payment["id"]), amount, currency)
    paid_at = datetime.fromtimestamp(int(envelope["created_at"]), UTC)
    return Captured(str(payment["id"]), amount, currency, paid_at)


def _qr_credited(
    envelope: dict[str, Any], payment: dict[str, Any], qr_code: dict[str, Any]
) -> Command:
    qr_id = qr_code["id"]
    status = payment.get("status")
    if not isinstance(qr_id, str) or status not in ("captured", "refunded", "authorized"):
        return Ignored(f"qr_code.credited {status}")
    amount, currency = int(payment["amount"]), str(payment["currency"])
    if status == "authorized":
        return PaymentCommand(qr_id, Authorized(str(payment["id"]), amount, currency))
    paid_at = datetime.fromtimestamp(int(envelope["created_at"]), UTC)
    return PaymentCommand(qr_id, Captured(str(payment["id"]), amount, currency, paid_at))


def parse_stripe(
    body: bytes, header: str | None, secrets: Secrets, now: datetime
) -> tuple[str, str, datetime, Command]:
    """The event id, type, creation time and command; `construct_event` checks the signature
    and the age of the signature (not of the event: a retry days later is signed anew)."""
    if not header:
        raise BadWebhook("the Stripe-Signature header is missing")
    event = None
    for secret in secrets.valid(now):
        try:
            event = stripe.Webhook.construct_event(body, header, secret.decode(), tolerance=300)
            break
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise BadWebhook("the webhook body is malformed") from None
    if event is None:
        raise BadWebhook("the webhook signature does not match or is too old")
    if b"\\u0000" in body:
        raise BadWebhook("the webhook body carries a NUL character")
    try:
        data = orjson.loads(body)
        command = _stripe_command(data["type"], data["data"])
        return str(data["id"]), str(data["type"]), _timestamp(data["created"]), command
    except (KeyError, TypeError, ValueError) as error:
        raise BadWebhook(f"the webhook body is malformed ({type(error).__name__})") from None


def _stripe_command(kind: str, data: dict[str, Any]) -> Command:
    obj = data["object"]
    if kind.startswith("payment_intent."):
        signal = intent_signal(obj)
        if kind == "payment_intent.payment_failed":
            error = obj.get("last_payment_error") or {}
            signal = Failed(obj.get("latest_charge"), error.get("code"), error.get("message"))
        if signal is None:
            return Ignored(kind)
        return PaymentCommand(str(obj["id"]), signal)
    if kind in ("refund.updated", "refund.failed", "charge.refund.updated"):
        status = obj.get("status")
        if status not in ("succeeded", "failed", "canceled"):
            return Ignored(f"{kind} {status}")
        metadata = obj.get("metadata") or {}
        return RefundCommand(str(obj["id"]), metadata.get("refund_id"), status == "succeeded")
    if kind.startswith("charge.dispute."):
        return stripe_dispute(obj) or Ignored(kind)
    return Ignored(kind)


def _timestamp(value: Any) -> datetime:
    """A provider's Unix time in seconds; bool is an int to Python but not to a provider."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("created")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError):
        raise ValueError("created") from None
