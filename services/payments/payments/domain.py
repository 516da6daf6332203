"""Payment states and the one transition every confirmation path goes through. Pure: no I/O.

A payment only moves forward: created → authorized → failed → captured → partially_refunded →
refunded (failed sits before captured because a later attempt on the same order may still be
paid). `conflicted` (the gateway reported another amount or currency) is terminal until a
person looks at it. `expired` (a created payment nobody paid in time) and `voided` (an
authorization released by an operator) rank with `failed`: money that arrives after them is
still captured, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class Status(StrEnum):
    CREATED = "created"
    AUTHORIZED = "authorized"
    FAILED = "failed"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CONFLICTED = "conflicted"
    EXPIRED = "expired"
    VOIDED = "voided"


RANK = {
    Status.CREATED: 0,
    Status.AUTHORIZED: 1,
    Status.FAILED: 2,
    Status.EXPIRED: 2,
    Status.VOIDED: 2,
    Status.CAPTURED: 3,
    Status.PARTIALLY_REFUNDED: 4,
    Status.REFUNDED: 5,
}
PAID = frozenset({Status.CAPTURED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})


class RefundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


@dataclass(frozen=True)
class Payment:
    """What the transition needs to know about the stored payment."""

    status: Status
    amount: int
    currency: str
    gateway_payment_id: str | None = None
    captured_amount: int = 0
    refunded_total: int = 0
    # What an operator asked to capture of the authorization (None: all of it).
    capture_requested: int | None = None

    @property
    def capture_expected(self) -> int:
        return self.amount if self.capture_requested is None else self.capture_requested


@dataclass(frozen=True)
class Authorized:
    gateway_payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Captured:
    gateway_payment_id: str
    amount: int
    currency: str
    paid_at: datetime | None = None  # None: when we learn of it


@dataclass(frozen=True)
class Failed:
    gateway_payment_id: str | None
    error_code: str | None = None
    error_description: str | None = None


@dataclass(frozen=True)
class RefundSettled:
    """A refund of ours the gateway processed (or failed); `amount` as we stored it."""

    amount: int
    processed: bool


@dataclass(frozen=True)
class Expired:
    """Nobody paid a created payment in time, as the gateway confirmed one last time."""


@dataclass(frozen=True)
class Voided:
    """An operator released an authorization (the gateway cancelled it, or will release it)."""


Signal = Authorized | Captured | Failed | RefundSettled | Expired | Voided
Emit = Literal["success", "failed", "refunded"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    emit: Emit | None = None
    gateway_payment_id: str | None = None
    captured_amount: int = 0
    refunded_total: int = 0
    conflict: str | None = None

    def changed(self, before: Payment) -> bool:
        return (self.status, self.gateway_payment_id, self.refunded_total) != (
            before.status,
            before.gateway_payment_id,
            before.refunded_total,
        )


def transition(payment: Payment, signal: Signal) -> Outcome:
    """The next state of `payment` given what the gateway told us; never a step backwards."""
    same = Outcome(
        payment.status,
        gateway_payment_id=payment.gateway_payment_id,
        captured_amount=payment.captured_amount,
        refunded_total=payment.refunded_total,
    )
    if payment.status is Status.CONFLICTED:
        return same
    if isinstance(signal, RefundSettled):
        return _refund(payment, signal, same)
    if isinstance(signal, Authorized | Captured):
        return _paid(payment, signal, same)
    if isinstance(signal, Expired):
        return _closed(payment, Status.CREATED, Status.EXPIRED, same)
    if isinstance(signal, Voided):
        return _closed(payment, Status.AUTHORIZED, Status.VOIDED, same)
    return _failed(payment, signal, same)


def _paid(payment: Payment, signal: Authorized | Captured, same: Outcome) -> Outcome:
    if RANK[payment.status] >= RANK[Status.CAPTURED]:
        return same
    # A capture may be of part of the authorization, when an operator asked for that part.
    expected = payment.capture_expected if isinstance(signal, Captured) else payment.amount
    if (signal.amount, signal.currency) != (expected, payment.currency):
        return Outcome(
            Status.CONFLICTED,
            gateway_payment_id=signal.gateway_payment_id,
            conflict=f"gateway reported {signal.amount} {signal.currency}, "
            f"expected {expected} {payment.currency}",
        )
    if isinstance(signal, Captured):
        return Outcome(
            Status.CAPTURED,
            emit="success",
            gateway_payment_id=signal.gateway_payment_id,
            captured_amount=signal.amount,
        )
    if payment.status is Status.CREATED:
        return Outcome(Status.AUTHORIZED, gateway_payment_id=signal.gateway_payment_id)
    return same


def _failed(payment: Payment, signal: Failed, same: Outcome) -> Outcome:
    if RANK[payment.status] >= RANK[Status.FAILED]:
        return same
    # A failed earlier attempt must not undo a later attempt that got authorized.
    known = payment.gateway_payment_id
    if known is not None and signal.gateway_payment_id not in (None, known):
        return same
    return Outcome(
        Status.FAILED, emit="failed", gateway_payment_id=signal.gateway_payment_id or known
    )


def _closed(payment: Payment, only: Status, to: Status, same: Outcome) -> Outcome:
    """Expiry and void: only from `only`, with no event (nothing was paid)."""
    if payment.status is not only:
        return same
    return Outcome(to, gateway_payment_id=payment.gateway_payment_id)


def _refund(payment: Payment, signal: RefundSettled, same: Outcome) -> Outcome:
    if not signal.processed or payment.status not in PAID:
        return same
    total = payment.refunded_total + signal.amount
    status = Status.REFUNDED if total >= payment.captured_amount else Status.PARTIALLY_REFUNDED
    return Outcome(
        status,
        emit="refunded",
        gateway_payment_id=payment.gateway_payment_id,
        captured_amount=payment.captured_amount,
        refunded_total=total,
    )


def refundable(payment: Payment, reserved: int) -> int:
    """What may still be refunded: captured, less every refund not failed (pending included)."""
    if payment.status not in PAID:
        return 0
    return max(0, payment.captured_amount - reserved)


class RefundRejected(Exception):
    pass


def refund_amount(payment: Payment, reserved: int, requested: int | None) -> int:
    """The amount of a new refund: all that is left when none is asked for."""
    left = refundable(payment, reserved)
    if payment.status not in PAID:
        raise RefundRejected(f"a {payment.status} payment cannot be refunded")
    if left == 0:
        raise RefundRejected("the payment has been refunded in full already")
    amount = left if requested is None else requested
    if amount > left:
        raise RefundRejected(f"{amount} exceeds the {left} left to refund")
    return amount


class CaptureRejected(Exception):
    pass


def capture_amount(payment: Payment, requested: int | None, *, partial: bool) -> int | None:
    """The amount to capture of an authorized payment (all of it when none is asked for); None
    when it is captured already, so that a repeated capture answers as the first did."""
    if payment.status in PAID:
        return None
    if payment.status is not Status.AUTHORIZED:
        raise CaptureRejected(f"a {payment.status} payment cannot be captured")
    amount = payment.capture_expected if requested is None else requested
    if amount > payment.amount:
        raise CaptureRejected(f"{amount} exceeds the {payment.amount} authorized")
    if amount != payment.amount and not partial:
        raise CaptureRejected("this gateway captures the whole authorization only")
    if payment.capture_requested is not None and amount != payment.capture_requested:
        raise CaptureRejected(f"a capture of {payment.capture_requested} was asked already")
    return amount


def voidable(payment: Payment) -> bool:
    """Whether to void: False when voided already (a repeat); refused unless authorized."""
    if payment.status is Status.VOIDED:
        return False
    if payment.status is not Status.AUTHORIZED:
        raise CaptureRejected(f"a {payment.status} payment cannot be voided")
    return True
