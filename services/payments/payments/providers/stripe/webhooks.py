"""Stripe's webhooks: `Stripe-Signature` checked by its SDK, then the event read into a command.

PaymentIntents (`payment_intent.*`), refunds (`refund.*`, `charge.refund.updated`) and disputes
(`charge.dispute.*`). No I/O: the endpoint parses and hands the command to `inbound.handle`.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import orjson
import stripe

from payments.disputes import DisputeCommand, DisputeStatus
from payments.domain import Signal
from payments.providers.stripe.wire import (
    Dispute,
    Event,
    PaymentIntent,
    Refund,
    failed,
    intent_signal,
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

REFUND_EVENTS = ("refund.updated", "refund.failed", "charge.refund.updated")
# warning_*: an inquiry, before any chargeback (`phase` "inquiry").
DISPUTE_STATUS = {
    "warning_needs_response": DisputeStatus.OPEN,
    "needs_response": DisputeStatus.OPEN,
    "warning_under_review": DisputeStatus.UNDER_REVIEW,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "warning_closed": DisputeStatus.CLOSED,
    "prevented": DisputeStatus.CLOSED,
}


def parse(
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
    refuse_nul(body)
    try:
        data = cast(Event, orjson.loads(body))
        command = _command(data["type"], data)
        return str(data["id"]), str(data["type"]), timestamp(data["created"]), command
    except (KeyError, TypeError, ValueError) as error:
        raise BadWebhook(f"the webhook body is malformed ({type(error).__name__})") from None


def _command(kind: str, event: Event) -> Command:
    obj = event["data"]["object"]
    if kind.startswith("payment_intent."):
        intent = cast(PaymentIntent, obj)
        signal: Signal | None = intent_signal(intent)
        if kind == "payment_intent.payment_failed":
            signal = failed(intent)
        if signal is None:
            return Ignored(kind)
        return PaymentCommand(str(intent["id"]), signal)
    if kind in REFUND_EVENTS:
        refund = cast(Refund, obj)
        status = refund.get("status")
        if status not in ("succeeded", "failed", "canceled"):
            return Ignored(f"{kind} {status}")
        metadata = refund.get("metadata") or {}
        return RefundCommand(str(refund["id"]), metadata.get("refund_id"), status == "succeeded")
    if kind.startswith("charge.dispute."):
        return dispute(cast(Dispute, obj)) or Ignored(kind)
    return Ignored(kind)


def dispute(entity: Dispute) -> DisputeCommand | None:
    """The Dispute object of a `charge.dispute.*` event; None for a status we do not know."""
    gateway_status = entity["status"]
    status = DISPUTE_STATUS.get(gateway_status)
    if status is None:
        return None
    evidence = entity.get("evidence_details") or {}
    return DisputeCommand(
        provider="stripe",
        gateway_dispute_id=text(entity["id"]),
        gateway_payment_id=optional_text(entity.get("charge")),
        gateway_order_id=optional_text(entity.get("payment_intent")),
        amount=amount(entity["amount"]),
        currency=currency(entity["currency"]),
        reason=optional_text(entity.get("reason")),
        status=status,
        gateway_status=gateway_status,
        phase="inquiry" if gateway_status.startswith("warning_") else "chargeback",
        evidence_due_by=optional_time(evidence.get("due_by")),
        opened_at=timestamp(entity["created"]),
    )
