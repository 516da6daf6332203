"""Applying what a gateway told us to a locked payment, with its event, in the caller's transaction.

Every path that learns something (checkout verify, Razorpay and Stripe webhooks, reconciliation)
ends here, so they all converge on the same state and emit each event at most once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from payments import outcome_store, refund_store, store
from payments.domain import (
    Captured,
    Failed,
    Outcome,
    RefundSettled,
    RefundStatus,
    Signal,
    Status,
    transition,
)
from payments.outcome_store import Change, Saved
from payments.refund_store import RefundRow
from payments.store import Delivery, PaymentRow
from rtmn_shared.db import Connection
from rtmn_shared.events.catalogue import PaymentFailed, PaymentRefunded, PaymentSuccess
from rtmn_shared.events.envelope import CloudEvent, EventData

log = logging.getLogger(__name__)

SOURCE = "rtmn/payments"


def decide(payment: PaymentRow, signal: Signal, delivery: Delivery | None = None) -> Change:
    """What `signal` does to `payment` as read: the outcome and the event it emits, if any."""
    outcome = transition(payment.domain(), signal)
    paid_at = None
    error: tuple[str | None, str | None] = (None, None)
    if outcome.emit == "success" and isinstance(signal, Captured):
        paid_at = signal.paid_at or datetime.now(UTC)
    if outcome.emit == "failed" and isinstance(signal, Failed):
        error = (signal.error_code, signal.error_description)
    data = _event(payment, outcome, paid_at, error)
    # Whichever request brings the outcome, its event continues the payment's own trace.
    event = CloudEvent.of(data, source=SOURCE, parent=payment.traceparent) if data else None
    return Change(payment, outcome, delivery, event, paid_at, error)


def noted(change: Change, saved: Saved) -> Saved:
    if saved is Saved.APPLIED and change.outcome.conflict:
        log.warning("payment %s conflicted: %s", change.payment.id, change.outcome.conflict)
    return saved


async def apply_signal(
    conn: Connection, payment: PaymentRow, signal: Signal, *, delivery: Delivery | None = None
) -> Saved:
    """Decides on `payment` as read and writes the outcome under its row lock.

    Read FOR UPDATE in this transaction, it is current and the result never STALE. Read without
    a lock, STALE says it changed in the meantime and nothing was written: decide again.
    """
    change = decide(payment, signal, delivery)
    return noted(change, await outcome_store.save_outcome(conn, change))


async def settle_refund(
    conn: Connection,
    payment: PaymentRow,
    refund: RefundRow,
    *,
    processed: bool,
    gateway_refund_id: str | None,
    delivery: Delivery | None = None,
) -> bool:
    """Finishes a pending refund; `payment` must be locked. False when nothing was left to do."""
    if delivery is not None and not await store.record_delivery(conn, delivery):
        return False
    status = RefundStatus.PROCESSED if processed else RefundStatus.FAILED
    if not await refund_store.settle_refund(conn, refund.id, status, gateway_refund_id):
        return False
    outcome = transition(payment.domain(), RefundSettled(refund.amount, processed))
    if outcome.emit != "refunded":
        return True
    event = CloudEvent.of(
        PaymentRefunded(
            refund_id=refund.id,
            payment_id=payment.id,
            order_id=payment.order_id,
            user_id=payment.user_id,
            amount=refund.amount,
            refunded_total=outcome.refunded_total,
            currency=payment.currency,
            full=outcome.status is Status.REFUNDED,
        ),
        source=SOURCE,
    )
    await outcome_store.save_outcome(conn, Change(payment, outcome, event=event))
    return True


def _event(
    payment: PaymentRow,
    outcome: Outcome,
    paid_at: datetime | None,
    error: tuple[str | None, str | None],
) -> EventData | None:
    if outcome.emit == "success":
        assert paid_at is not None
        assert outcome.gateway_payment_id is not None
        return PaymentSuccess(
            payment_id=payment.id,
            order_id=payment.order_id,
            order_number=payment.order_number,
            user_id=payment.user_id,
            merchant_id=payment.merchant_id,
            amount=outcome.captured_amount,
            currency=payment.currency,
            gateway=payment.gateway,
            gateway_payment_id=outcome.gateway_payment_id,
            paid_at=paid_at,
        )
    if outcome.emit == "failed":
        return PaymentFailed(
            payment_id=payment.id,
            order_id=payment.order_id,
            user_id=payment.user_id,
            amount=payment.amount,
            currency=payment.currency,
            gateway=payment.gateway,
            error_code=error[0],
            error_description=error[1],
        )
    return None
