"""Payments and webhook deliveries in SQL. Callers own the transaction; locks are FOR UPDATE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from payments import domain
from payments.domain import Status
from payments.key_store import Key
from payments.providers.gateway import NewPayment
from rtmn_shared.db import Connection
from rtmn_shared.dedupe import day_of

PAYMENT_COLUMNS = """id, user_id, order_id, order_number, merchant_id, amount, currency, gateway,
    status, gateway_order_id, gateway_payment_id, captured_amount, refunded_total, error_code,
    error_description, conflict_reason, paid_at, created_at, updated_at, traceparent,
    capture_requested"""


@dataclass(frozen=True)
class PaymentRow:
    id: str
    user_id: str
    order_id: str
    order_number: str
    merchant_id: str
    amount: int
    currency: str
    gateway: str
    status: Status
    gateway_order_id: str | None
    gateway_payment_id: str | None
    captured_amount: int
    refunded_total: int
    error_code: str | None
    error_description: str | None
    conflict_reason: str | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime
    traceparent: str | None = None  # the creating request's, which its outcome's event continues
    capture_requested: int | None = None  # an operator's capture of part of the authorization

    @classmethod
    def of(cls, record: asyncpg.Record) -> PaymentRow:
        values = dict(record)
        values["status"] = Status(values["status"])
        return cls(**values)

    def domain(self) -> domain.Payment:
        return domain.Payment(
            self.status,
            self.amount,
            self.currency,
            self.gateway_payment_id,
            self.captured_amount,
            self.refunded_total,
            self.capture_requested,
        )

    def new_payment(self) -> NewPayment:
        return NewPayment(
            self.id,
            self.user_id,
            self.order_id,
            self.order_number,
            self.merchant_id,
            self.amount,
            self.currency,
            self.created_at,
        )


@dataclass(frozen=True)
class Delivery:
    """A provider's webhook event, recorded in the same statement that applies it."""

    provider: str
    event_id: str
    event_type: str
    # The provider's own time of the event, the same on every retry: its record's day.
    created: datetime
    # SHA-256 of the signed body where the event id is outside the signature (Razorpay's header):
    # the same body under a new id is then a duplicate too.
    digest: bytes | None = None

    @property
    def day(self) -> date:
        return day_of(self.created)


# -- payments ---------------------------------------------------------------------------------


async def set_gateway_order(
    conn: Connection,
    payment_id: str,
    gateway_order_id: str,
    key: Key | None = None,
    status_code: int | None = None,
    response: dict[str, Any] | None = None,
    *,
    gateway: str | None = None,
    latency_ms: int | None = None,
) -> str | None:
    """Records the gateway's order once (a racing second order loses and the first is kept),
    with its `gateway` (a routed create may have used another than the one stored) and, in the
    same statement, the `key`'s answer (`status_code`, `response`) if the order kept is this one,
    and the attempt that opened it (with `latency_ms`): `opened`, or `stray` (watched by
    reconciliation) if another order was kept. Returns the order kept; None: the payment is gone
    (withdrawn by a request refused after storing it)."""
    # Always updating the row makes a racing request's committed order the one read back.
    kept: str | None = await conn.fetchval(
        """WITH kept AS (
               UPDATE payments SET gateway_order_id = coalesce(gateway_order_id, $2),
                   gateway = CASE WHEN gateway_order_id IS NULL THEN coalesce($7, gateway)
                                  ELSE gateway END,
                   updated_at = CASE WHEN gateway_order_id IS NULL THEN now() ELSE updated_at END,
                   attempts = attempts + ($8::integer IS NOT NULL)::integer
               WHERE id = $1 RETURNING gateway_order_id, attempts
           ), answered AS (
               UPDATE idempotency_keys SET status_code = $5, response = $6::jsonb
               WHERE user_id = $3 AND key = $4 AND resource_id = $1
                 AND (SELECT gateway_order_id FROM kept) = $2
           ), tried AS (
               INSERT INTO payment_attempts
                   (payment_id, attempt, gateway, outcome, gateway_order_id, latency_ms, watched)
               SELECT $1, kept.attempts, $7,
                   CASE WHEN kept.gateway_order_id = $2 THEN 'opened' ELSE 'stray' END,
                   $2, $8, kept.gateway_order_id <> $2
               FROM kept WHERE $8::integer IS NOT NULL
           )
           SELECT gateway_order_id FROM kept""",
        payment_id,
        gateway_order_id,
        key.user_id if key else None,
        key.value if key else None,
        status_code,
        orjson.dumps(response).decode() if key else None,
        gateway,
        latency_ms,
    )
    return kept


async def withdraw_payment(conn: Connection, payment_id: str, key: Key | None) -> None:
    """Undoes `order_store.insert_payment` for a create refused after it: the payment, still
    untouched, and the key that points at it, so that a retry with the key claims it afresh."""
    await conn.execute(
        """WITH gone AS (
               DELETE FROM payments
               WHERE id = $1 AND status = 'created' AND gateway_order_id IS NULL RETURNING id
           )
           DELETE FROM idempotency_keys
           WHERE user_id = $2 AND key = $3 AND status_code IS NULL
             AND resource_id IN (SELECT id FROM gone)""",
        payment_id,
        key.user_id if key else None,
        key.value if key else None,
    )


async def get_payment(
    conn: Connection, payment_id: str, *, lock: bool = False
) -> PaymentRow | None:
    suffix = " FOR UPDATE" if lock else ""
    record = await conn.fetchrow(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{suffix}",  # noqa: S608 - fixed text
        payment_id,
    )
    return PaymentRow.of(record) if record else None


async def by_gateway_orders(conn: Connection, gateway_order_ids: list[str]) -> list[PaymentRow]:
    records = await conn.fetch(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE gateway_order_id = ANY($1::text[])",  # noqa: S608
        gateway_order_ids,
    )
    return [PaymentRow.of(r) for r in records]


async def by_gateway_order(
    conn: Connection, gateway_order_id: str, *, lock: bool = False
) -> PaymentRow | None:
    suffix = " FOR UPDATE" if lock else ""
    record = await conn.fetchrow(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE gateway_order_id = $1{suffix}",  # noqa: S608
        gateway_order_id,
    )
    return PaymentRow.of(record) if record else None


async def record_delivery(conn: Connection, delivery: Delivery) -> bool:
    fresh = await conn.fetchval(
        """INSERT INTO webhook_deliveries (provider, event_id, event_type, day, body_digest)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        delivery.provider,
        delivery.event_id,
        delivery.event_type,
        delivery.day,
        delivery.digest,
    )
    return bool(fresh)


async def open_payments(conn: Connection, older_than: datetime, limit: int) -> list[PaymentRow]:
    rows = await conn.fetch(
        f"""SELECT {PAYMENT_COLUMNS} FROM payments
            WHERE status IN ('created', 'authorized') AND updated_at < $1
            ORDER BY updated_at LIMIT $2""",  # noqa: S608
        older_than,
        limit,
    )
    return [PaymentRow.of(r) for r in rows]


async def touch_payment(conn: Connection, payment_id: str) -> None:
    await conn.execute("UPDATE payments SET updated_at = now() WHERE id = $1", payment_id)


async def expiring_payments(
    conn: Connection, created_before: datetime, limit: int
) -> list[PaymentRow]:
    """Created payments nobody paid in time (migration 0006's index), oldest first."""
    rows = await conn.fetch(
        f"""SELECT {PAYMENT_COLUMNS} FROM payments
            WHERE status = 'created' AND created_at < $1
            ORDER BY created_at LIMIT $2""",  # noqa: S608
        created_before,
        limit,
    )
    return [PaymentRow.of(r) for r in rows]


async def request_capture(conn: Connection, payment_id: str, amount: int) -> None:
    """Records, under the caller's row lock, the part of the authorization asked to capture, so
    that the gateway's word of that capture (a webhook may come first) is not a conflict."""
    await conn.execute(
        "UPDATE payments SET capture_requested = $2, updated_at = now() WHERE id = $1",
        payment_id,
        amount,
    )
