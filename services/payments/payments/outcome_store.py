"""Writing a decided outcome: its delivery, the payment's new state and its event, atomically.

Each statement locks the payment FOR UPDATE and writes only while the row is still as the
outcome's `payment` was read, the state the transition was decided on. So one statement is a
whole step even outside a transaction, and a caller that read the row without a lock learns
(STALE) that it must decide again. On a row the caller locked already it is always current.
The event row is the one `Outbox.add` writes (its values from `OutboxRow`), folded in here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from payments.domain import Outcome
from payments.store import Delivery, PaymentRow
from rtmn_shared.db import Connection
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import OutboxRow


class Saved(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the provider had sent this delivery before: nothing changed
    STALE = "stale"  # the payment changed since it was read: nothing changed, decide again


@dataclass(frozen=True)
class Change:
    """An outcome decided on `payment` as read, with what comes with it."""

    payment: PaymentRow
    outcome: Outcome
    delivery: Delivery | None = None
    event: CloudEvent | None = None
    paid_at: datetime | None = None
    error: tuple[str | None, str | None] = (None, None)

    def values(self) -> tuple[Any, ...]:
        """The statements' parameters $1..$23, in order."""
        before, outcome, delivery = self.payment.domain(), self.outcome, self.delivery
        return (
            self.payment.id,
            outcome.status.value,
            outcome.gateway_payment_id,
            outcome.captured_amount,
            outcome.refunded_total,
            outcome.conflict,
            *self.error,
            *(
                (delivery.provider, delivery.event_id, delivery.event_type)
                if delivery
                else (None,) * 3
            ),
            self.paid_at,
            outcome.changed(before),
            *(OutboxRow.of(self.event) if self.event else (None,) * 4),
            before.status.value,
            before.gateway_payment_id,
            before.captured_amount,
            before.refunded_total,
            delivery.day if delivery else None,
            delivery.digest if delivery else None,
        )


async def save_outcome(conn: Connection, change: Change) -> Saved:
    row = await conn.fetchrow(
        """WITH locked AS MATERIALIZED (
               SELECT 1 FROM payments
               WHERE id = $1 AND status = $18 AND gateway_payment_id IS NOT DISTINCT FROM $19
                   AND captured_amount = $20 AND refunded_total = $21
               FOR UPDATE),
           delivery AS (
               INSERT INTO webhook_deliveries (provider, event_id, event_type, day, body_digest)
               SELECT $9::text, $10::text, $11::text, $22::date, $23::bytea
               WHERE $9::text IS NOT NULL AND EXISTS (SELECT 1 FROM locked)
               ON CONFLICT DO NOTHING RETURNING 1),
           fresh AS (
               SELECT EXISTS (SELECT 1 FROM locked)
                   AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM delivery)) AS yes),
           changed AS (
               UPDATE payments SET status = $2, gateway_payment_id = $3, captured_amount = $4,
                   refunded_total = $5, conflict_reason = COALESCE($6, conflict_reason),
                   error_code = COALESCE($7, error_code),
                   error_description = COALESCE($8, error_description),
                   paid_at = COALESCE(paid_at, $12), updated_at = now()
               WHERE id = $1 AND $13 AND (SELECT yes FROM fresh) RETURNING 1),
           emitted AS (
               INSERT INTO outbox (event_id, type, subject, payload)
               SELECT $14::uuid, $15::text, $16::text, $17::jsonb
               WHERE $14::uuid IS NOT NULL AND (SELECT yes FROM fresh) RETURNING 1)
           SELECT EXISTS (SELECT 1 FROM locked), (SELECT yes FROM fresh)""",
        *change.values(),
    )
    assert row is not None  # a SELECT without FROM: always one row
    return _saved(*row)


async def save_outcomes(conn: Connection, changes: Sequence[Change]) -> list[Saved]:
    """`save_outcome` for many payments in one statement and one commit, in the given order.

    The payments must be distinct. Rows are locked in id order, so that two such statements
    never wait on each other in a cycle.
    """
    columns = [list(column) for column in zip(*(c.values() for c in changes), strict=True)]
    rows = await conn.fetch(
        """WITH input AS MATERIALIZED (
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
                   $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                   $11::text[], $12::timestamptz[], $13::bool[], $14::uuid[], $15::text[],
                   $16::text[], $17::jsonb[], $18::text[], $19::text[], $20::bigint[],
                   $21::bigint[], $22::date[], $23::bytea[])
               WITH ORDINALITY AS i(id, status, gateway_payment_id, captured_amount,
                   refunded_total, conflict, error_code, error_description, provider, event_id,
                   event_type, paid_at, changed, event_uuid, routing_key, subject, payload,
                   was_status, was_gateway_payment_id, was_captured, was_refunded, day, digest,
                   n)),
           locked AS MATERIALIZED (
               SELECT p.id FROM payments p JOIN input i ON i.id = p.id
               WHERE p.status = i.was_status
                   AND p.gateway_payment_id IS NOT DISTINCT FROM i.was_gateway_payment_id
                   AND p.captured_amount = i.was_captured AND p.refunded_total = i.was_refunded
               ORDER BY p.id FOR UPDATE OF p),
           delivery AS (
               INSERT INTO webhook_deliveries (provider, event_id, event_type, day, body_digest)
               SELECT i.provider, i.event_id, i.event_type, i.day, i.digest
               FROM input i JOIN locked USING (id)
               WHERE i.provider IS NOT NULL
               ON CONFLICT DO NOTHING RETURNING provider, event_id),
           fresh AS MATERIALIZED (
               SELECT i.id FROM input i JOIN locked USING (id)
               WHERE i.provider IS NULL OR EXISTS (SELECT 1 FROM delivery d
                   WHERE d.provider = i.provider AND d.event_id = i.event_id)),
           changed AS (
               UPDATE payments p SET status = i.status, gateway_payment_id = i.gateway_payment_id,
                   captured_amount = i.captured_amount, refunded_total = i.refunded_total,
                   conflict_reason = COALESCE(i.conflict, p.conflict_reason),
                   error_code = COALESCE(i.error_code, p.error_code),
                   error_description = COALESCE(i.error_description, p.error_description),
                   paid_at = COALESCE(p.paid_at, i.paid_at), updated_at = now()
               FROM input i JOIN fresh USING (id)
               WHERE p.id = i.id AND i.changed RETURNING 1),
           emitted AS (
               INSERT INTO outbox (event_id, type, subject, payload)
               SELECT i.event_uuid, i.routing_key, i.subject, i.payload
               FROM input i JOIN fresh USING (id)
               WHERE i.event_uuid IS NOT NULL ORDER BY i.n RETURNING 1)
           SELECT EXISTS (SELECT 1 FROM locked l WHERE l.id = i.id),
               EXISTS (SELECT 1 FROM fresh f WHERE f.id = i.id)
           FROM input i ORDER BY i.n""",
        *columns,
    )
    return [_saved(*row) for row in rows]


def _saved(current: bool, fresh: bool) -> Saved:
    if not current:
        return Saved.STALE
    return Saved.APPLIED if fresh else Saved.DUPLICATE
