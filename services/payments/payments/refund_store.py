"""Refunds in SQL. Every path locks the payment row first (store.get_payment(lock=True))."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from payments.domain import RefundStatus
from payments.store import PaymentRow, get_payment
from rtmn_shared.db import Connection

_REFUND = "id, payment_id, amount, status, gateway_refund_id, reason, created_at, updated_at"


@dataclass(frozen=True)
class RefundRow:
    id: str
    payment_id: str
    amount: int
    status: RefundStatus
    gateway_refund_id: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: asyncpg.Record) -> RefundRow:
        values = dict(record)
        values["status"] = RefundStatus(values["status"])
        return cls(**values)


async def refunds_of(conn: Connection, payment_id: str) -> list[RefundRow]:
    rows = await conn.fetch(
        f"SELECT {_REFUND} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id",  # noqa: S608
        payment_id,
    )
    return [RefundRow.of(r) for r in rows]


async def reserved_for_refunds(conn: Connection, payment_id: str) -> int:
    """Pending and processed refunds together: what may no longer be refunded again."""
    total: int = await conn.fetchval(
        "SELECT COALESCE(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status <> 'failed'",
        payment_id,
    )
    return total


async def insert_refund(
    conn: Connection, refund_id: str, payment_id: str, amount: int, reason: str | None
) -> RefundRow:
    record = await conn.fetchrow(
        f"""INSERT INTO refunds (id, payment_id, amount, reason) VALUES ($1, $2, $3, $4)
            RETURNING {_REFUND}""",  # noqa: S608
        refund_id,
        payment_id,
        amount,
        reason,
    )
    assert record is not None
    return RefundRow.of(record)


async def get_refund(conn: Connection, refund_id: str) -> RefundRow | None:
    record = await conn.fetchrow(f"SELECT {_REFUND} FROM refunds WHERE id = $1", refund_id)  # noqa: S608
    return RefundRow.of(record) if record else None


async def set_gateway_refund(conn: Connection, refund_id: str, gateway_refund_id: str) -> None:
    await conn.execute(
        """UPDATE refunds SET gateway_refund_id = $2, updated_at = now()
           WHERE id = $1 AND gateway_refund_id IS NULL""",
        refund_id,
        gateway_refund_id,
    )


async def lock_refund(
    conn: Connection, *, refund_id: str | None, gateway_refund_id: str | None
) -> tuple[PaymentRow, RefundRow] | None:
    """The refund and its payment, the payment row locked: refunds of a payment serialise."""
    payment_id = await conn.fetchval(
        "SELECT payment_id FROM refunds WHERE id = $1 OR gateway_refund_id = $2 LIMIT 1",
        refund_id,
        gateway_refund_id,
    )
    if payment_id is None:
        return None
    payment = await get_payment(conn, payment_id, lock=True)
    record = await conn.fetchrow(
        f"SELECT {_REFUND} FROM refunds WHERE id = $1 OR gateway_refund_id = $2 LIMIT 1",  # noqa: S608
        refund_id,
        gateway_refund_id,
    )
    assert payment is not None
    assert record is not None
    return payment, RefundRow.of(record)


async def settle_refund(
    conn: Connection, refund_id: str, status: RefundStatus, gateway_refund_id: str | None
) -> bool:
    """Moves a pending refund to its final status; False when it was settled already."""
    done = await conn.fetchval(
        """UPDATE refunds SET status = $2, updated_at = now(),
               gateway_refund_id = COALESCE(gateway_refund_id, $3)
           WHERE id = $1 AND status = 'pending' RETURNING true""",
        refund_id,
        status.value,
        gateway_refund_id,
    )
    return bool(done)


async def pending_refunds(conn: Connection, older_than: datetime, limit: int) -> list[RefundRow]:
    rows = await conn.fetch(
        f"""SELECT {_REFUND} FROM refunds WHERE status = 'pending' AND updated_at < $1
            ORDER BY updated_at LIMIT $2""",  # noqa: S608
        older_than,
        limit,
    )
    return [RefundRow.of(r) for r in rows]


async def touch_refund(conn: Connection, refund_id: str) -> None:
    """Moves a still-pending refund to the back of reconciliation's queue."""
    await conn.execute("UPDATE refunds SET updated_at = now() WHERE id = $1", refund_id)
