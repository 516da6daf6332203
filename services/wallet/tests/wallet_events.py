"""Event data for the wallet's tests: unique ids, an order, its payment, a refund of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rtmn_shared.events.catalogue import OrderPlaced, PaymentRefunded, PaymentSuccess


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def payment(user_id: str, amount: int, payment_id: str | None = None) -> PaymentSuccess:
    pid = payment_id or uid("pay")
    return PaymentSuccess(
        payment_id=pid,
        order_id=f"ord_{pid}",
        order_number=f"R-{pid}",
        user_id=user_id,
        merchant_id="m_1",
        amount=amount,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=f"rzp_{pid}",
        paid_at=datetime.now(UTC),
    )


def refund(paid: PaymentSuccess, amount: int, refunded_total: int) -> PaymentRefunded:
    return PaymentRefunded(
        refund_id=uid("rfnd"),
        payment_id=paid.payment_id,
        order_id=paid.order_id,
        user_id=paid.user_id,
        amount=amount,
        refunded_total=refunded_total,
        currency=paid.currency,
        full=refunded_total >= paid.amount,
    )


def placed(paid: PaymentSuccess) -> OrderPlaced:
    """The order.placed that came before `paid`: same order, user and amount."""
    return OrderPlaced(
        order_id=paid.order_id,
        order_number=paid.order_number,
        user_id=paid.user_id,
        merchant_id=paid.merchant_id,
        amount=paid.amount,
        currency=paid.currency,
    )
