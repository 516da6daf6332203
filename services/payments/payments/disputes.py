"""Disputes in our words, and which report is the newer. Pure.

Each provider reads its own reports into a `DisputeCommand` (`providers/razorpay/webhooks.py`,
`providers/stripe/webhooks.py`).

A dispute never moves its payment: the payment keeps its state and the dispute's outcome travels
in `payment.disputed`. Reports arrive in any order; one is applied only if it is newer than the
last applied, by the provider's own time of the event (`Delivery.created`: Razorpay's
`created_at`, Stripe's `created`, both repeated on retries) and, within the same second, by
status rank (open < under_review < won, lost, closed). So a late `created` never undoes a
`won`, while a dispute re-opened later (Razorpay's pre-arbitration, a Stripe inquiry turned
chargeback) does move back to `open`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
