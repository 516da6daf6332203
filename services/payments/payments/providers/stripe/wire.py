"""What Stripe sends (the fields we read) and its PaymentIntent in our words, once.

An intent reaches us from the SDK (`to_dict()` of what the API answered) and inside a webhook's
event, as the same JSON; both become a `Signal` through `intent_signal` alone. Read as sent:
each field is converted where it is read.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from payments.domain import Authorized, Captured, Failed, Signal


class PaymentError(TypedDict, total=False):
    code: str | None
    message: str | None


class PaymentIntent(TypedDict):
    id: str
    # requires_payment_method, requires_confirmation, requires_action, processing,
    # requires_capture, canceled, succeeded
    status: str
    amount: NotRequired[int]
    amount_received: NotRequired[int | None]
    currency: NotRequired[str]
    latest_charge: NotRequired[str | None]  # the charge id (never expanded here)
    last_payment_error: NotRequired[PaymentError | None]


class Refund(TypedDict):
    id: str
    status: NotRequired[str | None]  # pending, requires_action, succeeded, failed, canceled
    metadata: NotRequired[dict[str, str] | None]  # ours: {"refund_id": ..., "payment_id": ...}


class EvidenceDetails(TypedDict, total=False):
    due_by: int | None


class Dispute(TypedDict):
    id: str
    status: str
    amount: int
    currency: str
    created: int
    charge: NotRequired[str | None]
    payment_intent: NotRequired[str | None]
    reason: NotRequired[str | None]
    evidence_details: NotRequired[EvidenceDetails | None]


class EventData(TypedDict):
    object: dict[str, Any]  # the intent, refund or dispute, by the event's type


class Event(TypedDict):
    id: str
    type: str
    created: int  # Unix seconds
    data: EventData


def intent_signal(intent: PaymentIntent) -> Signal | None:
    """A PaymentIntent (from the API or a webhook) as a signal; None while it is still open."""
    status = intent.get("status")
    payment_id = intent.get("latest_charge") or intent["id"]
    currency = str(intent.get("currency", "")).upper()
    if status == "succeeded":
        return Captured(payment_id, int(intent.get("amount_received") or 0), currency)
    if status == "requires_capture":
        return Authorized(payment_id, int(intent.get("amount") or 0), currency)
    error: PaymentError = intent.get("last_payment_error") or {}
    if status == "canceled" or (status == "requires_payment_method" and error):
        return Failed(intent.get("latest_charge"), error.get("code"), error.get("message"))
    return None


def failed(intent: PaymentIntent) -> Failed:
    """A `payment_intent.payment_failed` event's intent: the attempt's charge and its error."""
    error: PaymentError = intent.get("last_payment_error") or {}
    return Failed(intent.get("latest_charge"), error.get("code"), error.get("message"))
