"""A payment's attempts at the gateways in SQL: a failed try (moving a routed payment on), and
the possible stray orders reconciliation watches. An opened try is recorded by
`store.set_gateway_order`, in the statement that records its order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.domain import Status
from payments.routing import Failure
from payments.store import PAYMENT_COLUMNS, PaymentRow
from rtmn_shared.db import Connection


async def failed(
    conn: Connection, payment_id: str, gateway: str, failure: Failure, next: str
) -> bool:
    """Records the failed try and, while the payment has no order, moves it to `next` (its
    gateway again when nothing is left to try). An `unknown` try is watched as a possible stray
    unless the payment stays there, where a retry or reconciliation looks for its order; so are
    earlier unknown tries at a gateway the payment now leaves. False: an order was recorded
    meanwhile (a racing request), so the payment does not move."""
    moved: bool | None = await conn.fetchval(
        """WITH counted AS (
               UPDATE payments SET attempts = attempts + 1,
                   gateway = CASE WHEN gateway_order_id IS NULL THEN $6 ELSE gateway END,
                   updated_at = CASE WHEN gateway_order_id IS NULL THEN now() ELSE updated_at END
               WHERE id = $1 RETURNING attempts, gateway_order_id IS NULL AS moved
           ), left_behind AS (
               UPDATE payment_attempts SET watched = true
               WHERE payment_id = $1 AND gateway = $2 AND outcome = 'unknown' AND $6 <> $2
                 AND (SELECT moved FROM counted)
           ), tried AS (
               INSERT INTO payment_attempts
                   (payment_id, attempt, gateway, outcome, error, latency_ms, watched)
               SELECT $1, attempts, $2, $3, $4, $5, $3 = 'unknown' AND NOT (moved AND $6 = $2)
               FROM counted
           )
           SELECT moved FROM counted""",
        payment_id,
        gateway,
        failure.outcome,
        failure.error,
        failure.latency_ms,
        next,
    )
    return bool(moved)


@dataclass(frozen=True)
class Watched:
    """A try that may have left an order the payment does not hold."""

    attempt: int
    gateway: str
    gateway_order_id: str | None
    at: datetime
    payment: PaymentRow


async def watched(conn: Connection, older_than: datetime, limit: int) -> list[Watched]:
    rows = await conn.fetch(
        f"""SELECT a.attempt, a.gateway AS tried, a.gateway_order_id AS stray,
                a.at AS tried_at, {", ".join(f"p.{c.strip()}" for c in PAYMENT_COLUMNS.split(","))}
            FROM payment_attempts a JOIN payments p ON p.id = a.payment_id
            WHERE a.watched AND a.settled IS NULL AND coalesce(a.checked_at, a.at) < $1
            ORDER BY coalesce(a.checked_at, a.at) LIMIT $2""",  # noqa: S608 - fixed text
        older_than,
        limit,
    )
    return [
        Watched(
            r["attempt"],
            r["tried"],
            r["stray"],
            r["tried_at"],
            _payment({k: v for k, v in r.items() if k not in _ATTEMPT}),
        )
        for r in rows
    ]


_ATTEMPT = frozenset({"attempt", "tried", "stray", "tried_at"})


def _payment(values: dict[str, Any]) -> PaymentRow:
    return PaymentRow(**{**values, "status": Status(values["status"])})


async def checked(
    conn: Connection,
    payment_id: str,
    attempt: int,
    gateway_order_id: str | None,
    settled: str | None = None,
    gateway_refund_id: str | None = None,
) -> None:
    """A watched try looked at: its order if found, and how it ended, if it did."""
    await conn.execute(
        """UPDATE payment_attempts SET checked_at = now(),
               gateway_order_id = coalesce(gateway_order_id, $3), settled = $4,
               gateway_refund_id = coalesce($5, gateway_refund_id)
           WHERE payment_id = $1 AND attempt = $2""",
        payment_id,
        attempt,
        gateway_order_id,
        settled,
        gateway_refund_id,
    )
