"""Disputes in SQL, and a provider's report of one applied with its delivery and its event.

`apply_dispute` runs in the webhook's transaction: the delivery is recorded first (a duplicate
changes nothing), the dispute row is read FOR UPDATE (so reports of one dispute serialise), and
the row and its `payment.disputed` outbox row commit together. The payment row is only read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from payments import store
from payments.disputes import DisputeCommand, DisputeStatus, supersedes
from payments.store import Delivery, PaymentRow
from rtmn_shared.db import Connection
from rtmn_shared.events.catalogue import PaymentDisputed
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import OutboxRow

SOURCE = "rtmn/payments"
_DISPUTE = """id, provider, gateway_dispute_id, payment_id, amount, currency, reason, status,
    gateway_status, phase, evidence_due_by, opened_at, event_at, created_at, updated_at"""
# A provider's dispute belongs to a payment made through it (UPI payments are Razorpay orders).
_GATEWAYS = {"razorpay": ["razorpay", "upi"], "stripe": ["stripe"]}


@dataclass(frozen=True)
class DisputeRow:
    id: str
    provider: str
    gateway_dispute_id: str
    payment_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: DisputeStatus
    gateway_status: str
    phase: str | None
    evidence_due_by: datetime | None
    opened_at: datetime
    event_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: asyncpg.Record) -> DisputeRow:
        values = dict(record)
        values["status"] = DisputeStatus(values["status"])
        return cls(**values)


async def apply_dispute(conn: Connection, delivery: Delivery, command: DisputeCommand) -> bool:
    """False when the provider had sent this event before: nothing changes then."""
    if not await store.record_delivery(conn, delivery):
        return False
    payment = await payment_disputed(conn, command)
    payment_id = payment.id if payment else None
    current = await _locked(conn, command)
    if current is None:
        current = await _insert(conn, command, payment_id, delivery.created)
        if current is not None:
            await _emit(conn, payment, current)
            return True
        current = await _locked(conn, command)  # a report of the same dispute inserted it first
        assert current is not None
    if not supersedes(delivery.created, command.status, current.event_at, current.status):
        return True  # older than what is recorded: the delivery is kept, the dispute is not moved
    updated = await _update(conn, current.id, command, payment_id, delivery.created)
    if (updated.status, updated.phase) != (current.status, current.phase) or (
        updated.payment_id is not None and current.payment_id is None
    ):
        await _emit(conn, payment, updated)
    return True


async def payment_disputed(conn: Connection, command: DisputeCommand) -> PaymentRow | None:
    """The payment a dispute is about: by the gateway's order if the report names it, else by
    the gateway's payment (Razorpay's payment id, Stripe's charge)."""
    record = await conn.fetchrow(
        f"""SELECT {store.PAYMENT_COLUMNS} FROM payments
            WHERE (gateway_order_id = $1 OR gateway_payment_id = $2) AND gateway = ANY($3)
            ORDER BY gateway_order_id = $1 DESC NULLS LAST LIMIT 1""",  # noqa: S608
        command.gateway_order_id,
        command.gateway_payment_id,
        _GATEWAYS[command.provider],
    )
    return PaymentRow.of(record) if record else None


async def disputes_of(conn: Connection, payment_id: str) -> list[DisputeRow]:
    rows = await conn.fetch(
        f"SELECT {_DISPUTE} FROM disputes WHERE payment_id = $1 ORDER BY opened_at, id",  # noqa: S608
        payment_id,
    )
    return [DisputeRow.of(r) for r in rows]


async def _locked(conn: Connection, command: DisputeCommand) -> DisputeRow | None:
    record = await conn.fetchrow(
        f"""SELECT {_DISPUTE} FROM disputes WHERE provider = $1 AND gateway_dispute_id = $2
            FOR UPDATE""",  # noqa: S608
        command.provider,
        command.gateway_dispute_id,
    )
    return DisputeRow.of(record) if record else None


async def _insert(
    conn: Connection, command: DisputeCommand, payment_id: str | None, event_at: datetime
) -> DisputeRow | None:
    record = await conn.fetchrow(
        f"""INSERT INTO disputes (id, provider, gateway_dispute_id, payment_id, amount, currency,
                reason, status, gateway_status, phase, evidence_due_by, opened_at, event_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (provider, gateway_dispute_id) DO NOTHING RETURNING {_DISPUTE}""",  # noqa: S608
        f"dsp_{uuid.uuid4().hex}",
        command.provider,
        command.gateway_dispute_id,
        payment_id,
        *_state(command),
        command.opened_at,
        event_at,
    )
    return DisputeRow.of(record) if record else None


async def _update(
    conn: Connection,
    dispute_id: str,
    command: DisputeCommand,
    payment_id: str | None,
    event_at: datetime,
) -> DisputeRow:
    record = await conn.fetchrow(
        f"""UPDATE disputes SET payment_id = COALESCE(payment_id, $2), amount = $3, currency = $4,
                reason = COALESCE($5, reason), status = $6, gateway_status = $7,
                phase = COALESCE($8, phase), evidence_due_by = COALESCE($9, evidence_due_by),
                event_at = $10, updated_at = now()
            WHERE id = $1 RETURNING {_DISPUTE}""",  # noqa: S608
        dispute_id,
        payment_id,
        *_state(command),
        event_at,
    )
    assert record is not None  # locked in this transaction
    return DisputeRow.of(record)


def _state(command: DisputeCommand) -> tuple[object, ...]:
    return (
        command.amount,
        command.currency,
        command.reason,
        command.status.value,
        command.gateway_status,
        command.phase,
        command.evidence_due_by,
    )


async def _emit(conn: Connection, payment: PaymentRow | None, dispute: DisputeRow) -> None:
    """`payment.disputed` for a dispute of a payment we know; of an unknown one, only the row."""
    if payment is None:
        return
    data = PaymentDisputed(
        payment_id=payment.id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        dispute_id=dispute.id,
        gateway=payment.gateway,
        gateway_dispute_id=dispute.gateway_dispute_id,
        amount=dispute.amount,
        currency=dispute.currency,
        reason=dispute.reason,
        status=dispute.status.value,
        phase=dispute.phase,
        evidence_due_by=dispute.evidence_due_by,
    )
    # The dispute continues the payment's own trace, as its capture did.
    event = CloudEvent.of(data, source=SOURCE, parent=payment.traceparent)
    await conn.execute(
        "INSERT INTO outbox (event_id, type, subject, payload) VALUES ($1, $2, $3, $4)",
        *OutboxRow.of(event),
    )
