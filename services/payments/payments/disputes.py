"""Disputes as the providers report them, in our words, and which report is the newer. Pure.

A dispute never moves its payment: the payment keeps its state and the dispute's outcome travels
in `payment.disputed`. Reports arrive in any order; one is applied only if it is newer than the
last applied, by the provider's own time of the event (`Delivery.created`: Razorpay's
`created_at`, Stripe's `created`, both repeated on retries) and, within the same second, by
status rank (open < under_review < won, lost, closed). So a late `created` never undoes a
`won`, while a dispute re-opened later (Razorpay's pre-arbitration, a Stripe inquiry turned
chargeback) does move back to `open`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class DisputeStatus(StrEnum):
    OPEN = "open"  # the merchant may respond (Stripe's inquiries and chargebacks alike)
    UNDER_REVIEW = "under_review"  # evidence submitted, the issuer decides
    WON = "won"  # the funds stay with (or return to) the merchant
    LOST = "lost"  # the funds go to the customer
    CLOSED = "closed"  # over without a decision (Razorpay closed, Stripe warning_closed/prevented)


RANK = {
    DisputeStatus.OPEN: 0,
    DisputeStatus.UNDER_REVIEW: 1,
    DisputeStatus.WON: 2,
    DisputeStatus.LOST: 2,
    DisputeStatus.CLOSED: 2,
}

RAZORPAY_STATUSES = {
    "open": DisputeStatus.OPEN,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "closed": DisputeStatus.CLOSED,
}
# warning_*: an inquiry, before any chargeback (`phase` "inquiry").
STRIPE_STATUSES = {
    "warning_needs_response": DisputeStatus.OPEN,
    "needs_response": DisputeStatus.OPEN,
    "warning_under_review": DisputeStatus.UNDER_REVIEW,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "warning_closed": DisputeStatus.CLOSED,
    "prevented": DisputeStatus.CLOSED,
}
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class DisputeCommand:
    """One provider report of a dispute: its state as of the event that carried it."""

    provider: str
    gateway_dispute_id: str
    gateway_payment_id: str | None  # Razorpay's payment, Stripe's charge
    gateway_order_id: str | None  # Razorpay's order, Stripe's PaymentIntent (either may be null)
    amount: int
    currency: str
    reason: str | None
    status: DisputeStatus
    gateway_status: str
    phase: str | None
    evidence_due_by: datetime | None
    opened_at: datetime


def supersedes(new_at: datetime, new: DisputeStatus, old_at: datetime, old: DisputeStatus) -> bool:
    return (new_at, RANK[new]) > (old_at, RANK[old])


def razorpay_dispute(payload: dict[str, Any]) -> DisputeCommand | None:
    """`payload` of a `payment.dispute.*` webhook; None for a status we do not know."""
    dispute = payload["dispute"]["entity"]
    payment = (payload.get("payment") or {}).get("entity") or {}
    status = RAZORPAY_STATUSES.get(dispute["status"])
    if status is None:
        return None
    return DisputeCommand(
        provider="razorpay",
        gateway_dispute_id=_text(dispute["id"]),
        gateway_payment_id=_text(dispute["payment_id"]),
        gateway_order_id=_optional_text(payment.get("order_id")),
        amount=_amount(dispute["amount"]),
        currency=_currency(dispute["currency"]),
        reason=_optional_text(dispute.get("reason_code")),
        status=status,
        gateway_status=dispute["status"],
        phase=_optional_text(dispute.get("phase")),
        evidence_due_by=_time(dispute.get("respond_by")),
        opened_at=_required_time(dispute["created_at"]),
    )


def stripe_dispute(dispute: dict[str, Any]) -> DisputeCommand | None:
    """The Dispute object of a `charge.dispute.*` event; None for a status we do not know."""
    gateway_status = dispute["status"]
    status = STRIPE_STATUSES.get(gateway_status)
    if status is None:
        return None
    evidence = dispute.get("evidence_details") or {}
    return DisputeCommand(
        provider="stripe",
        gateway_dispute_id=_text(dispute["id"]),
        gateway_payment_id=_optional_text(dispute.get("charge")),
        gateway_order_id=_optional_text(dispute.get("payment_intent")),
        amount=_amount(dispute["amount"]),
        currency=_currency(dispute["currency"]),
        reason=_optional_text(dispute.get("reason")),
        status=status,
        gateway_status=gateway_status,
        phase="inquiry" if gateway_status.startswith("warning_") else "chargeback",
        evidence_due_by=_time(evidence.get("due_by")),
        opened_at=_required_time(dispute["created"]),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("dispute field")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("amount")
    return value


def _currency(value: Any) -> str:
    currency = _text(value).upper()
    if not _CURRENCY.fullmatch(currency):
        raise ValueError("currency")
    return currency


def _time(value: Any) -> datetime | None:
    return None if value is None else _required_time(value)


def _required_time(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("time")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError):
        raise ValueError("time") from None
