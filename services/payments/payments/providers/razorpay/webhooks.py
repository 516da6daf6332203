"""Razorpay's webhooks: HMAC-SHA256 over the raw body, then its payload read into a command.

Payments (`payment.*`, `order.paid`), refunds (`refund.*`), UPI QR codes (`qr_code.credited`)
and disputes (`payment.dispute.*`). No I/O: the endpoint verifies, parses, and hands the command
to `inbound.handle`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import cast

import orjson

from payments.disputes import DisputeCommand, DisputeStatus
from payments.providers.razorpay.wire import (
    DisputeEntity,
    Envelope,
    Payload,
    PaymentEntity,
    QrCodeEntity,
    signal,
)
from payments.webhooks import (
    BadWebhook,
    Command,
    Ignored,
    PaymentCommand,
    RefundCommand,
    Secrets,
    amount,
    currency,
    optional_text,
    optional_time,
    refuse_nul,
    text,
    timestamp,
)

# Razorpay retries a failed delivery "for 24 hours after event creation timestamp" (its webhook
# best practices), so an older signed body is a replay, never a retry; an hour for clock skew.
MAX_AGE = timedelta(hours=25)
TOO_OLD = (
    "older than Razorpay retries a webhook (24 hours after its created_at): a replay, not a retry"
)

# The payment's status each payment event reports (`order.paid` carries the captured payment).
EVENT_STATUS = {
    "payment.authorized": "authorized",
    "payment.captured": "captured",
    "order.paid": "captured",
    "payment.failed": "failed",
}
# A QR code's payment counts once it is authorized or captured (refunded: captured, then given
# back); a failed attempt leaves the code open for another.
QR_PAID = ("captured", "refunded", "authorized")
DISPUTE_STATUS = {
    "open": DisputeStatus.OPEN,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "closed": DisputeStatus.CLOSED,
}


def verify(body: bytes, signature: str | None, secrets: Secrets, now: datetime) -> None:
    if not signature:
        raise BadWebhook("the X-Razorpay-Signature header is missing")
    given = signature.strip().encode("ascii", "replace")
    for secret in secrets.valid(now):
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            return
    raise BadWebhook("the webhook signature does not match")


def parse(body: bytes) -> tuple[str, datetime, Command]:
    """The event type, when Razorpay made the event, and what it asks of us."""
    refuse_nul(body)
    try:
        envelope = orjson.loads(body)
        event = envelope["event"]
        if not isinstance(event, str):
            raise TypeError("event")
        created = timestamp(envelope["created_at"])
        return event, created, _command(event, created, cast(Envelope, envelope)["payload"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise BadWebhook(f"the webhook body is malformed ({type(error).__name__})") from None


def _command(event: str, created: datetime, payload: Payload) -> Command:
    if event.startswith("payment.dispute."):
        return dispute(payload) or Ignored(event)
    if event in ("refund.processed", "refund.failed"):
        refund = payload["refund"]["entity"]
        notes = refund.get("notes")
        ours = notes.get("refund_id") if isinstance(notes, dict) else None
        return RefundCommand(str(refund["id"]), ours, event == "refund.processed")
    payment = payload["payment"]["entity"] if "payment" in payload else cast(PaymentEntity, {})
    if event == "qr_code.credited":
        return _qr_credited(created, payment, payload["qr_code"]["entity"])
    order_id = payment.get("order_id")
    status = EVENT_STATUS.get(event)
    if status is None:
        return Ignored(event)
    paid = signal(payment, status, created)
    if not isinstance(order_id, str):
        return Ignored(event)  # a QR code's payment: its `qr_code.credited` names our payment
    return PaymentCommand(order_id, paid)


def _qr_credited(created: datetime, payment: PaymentEntity, qr_code: QrCodeEntity) -> Command:
    """A UPI payment to our QR code: no order, the code's id names our payment."""
    qr_id = qr_code["id"]
    status = payment.get("status")
    if not isinstance(qr_id, str) or status not in QR_PAID:
        return Ignored(f"qr_code.credited {status}")
    return PaymentCommand(qr_id, signal(payment, status, created))


def dispute(payload: Payload) -> DisputeCommand | None:
    """`payload` of a `payment.dispute.*` webhook; None for a status we do not know."""
    entity: DisputeEntity = payload["dispute"]["entity"]
    linked = payload.get("payment")  # the disputed payment, when Razorpay includes it
    payment = linked.get("entity") if linked else None
    status = DISPUTE_STATUS.get(entity["status"])
    if status is None:
        return None
    return DisputeCommand(
        provider="razorpay",
        gateway_dispute_id=text(entity["id"]),
        gateway_payment_id=text(entity["payment_id"]),
        gateway_order_id=optional_text(payment.get("order_id") if payment else None),
        amount=amount(entity["amount"]),
        currency=currency(entity["currency"]),
        reason=optional_text(entity.get("reason_code")),
        status=status,
        gateway_status=entity["status"],
        phase=optional_text(entity.get("phase")),
        evidence_due_by=optional_time(entity.get("respond_by")),
        opened_at=timestamp(entity["created_at"]),
    )
