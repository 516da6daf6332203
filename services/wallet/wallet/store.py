"""The wallet's SQL. Every write takes the caller's connection, inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from rtmn_shared.db import Connection, Pool


@dataclass(frozen=True)
class Earning:
    payment_id: str
    user_id: str
    amount: int
    currency: str
    tier: str
    coins: int


@dataclass(frozen=True)
class Refund:
    refund_id: str
    payment_id: str
    user_id: str
    amount: int
    refunded_total: int
    currency: str
    full: bool


@dataclass(frozen=True)
class NewEntry:
    entry_id: uuid.UUID
    user_id: str
    kind: str
    coins: int  # signed: a reversal is negative
    payment_id: str
    refund_id: str | None


@dataclass(frozen=True)
class Entry:
    seq: int
    entry_id: uuid.UUID
    user_id: str
    kind: str
    coins: int
    payment_id: str
    refund_id: str | None
    balance_after: int
    shortfall: int
    created_at: datetime


async def lock_payment(conn: Connection, payment_id: str) -> None:
    """Serialises everything done for one payment (its credit and its refunds) until commit.

    Without it a refund could miss a credit committing at the same moment, and the credit miss
    the refund, leaving the refund pending forever. A hash collision only serialises two payments.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", _lock_key(payment_id)
    )


async def lock_payment_and_read_tier(conn: Connection, payment_id: str, user_id: str) -> str | None:
    """`lock_payment`, and the payer's known tier, in one round trip."""
    tier: str | None = await conn.fetchval(
        """SELECT (SELECT tier FROM users WHERE user_id = $2)
           FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS locked""",
        _lock_key(payment_id),
        user_id,
    )
    return tier


async def known_tier(conn: Connection, user_id: str) -> str | None:
    """The tier user.registered told (None: not heard of), read as `lock_payment_and_read_tier`
    reads it for a credit."""
    tier: str | None = await conn.fetchval("SELECT tier FROM users WHERE user_id = $1", user_id)
    return tier


def _lock_key(payment_id: str) -> str:
    return f"wallet.payment:{payment_id}"


async def upsert_user(conn: Connection, user_id: str, tier: str | None, at: datetime) -> None:
    # An older event replayed after a newer one must not roll the tier back.
    await conn.execute(
        """INSERT INTO users (user_id, tier, registered_at) VALUES ($1, $2, $3)
           ON CONFLICT (user_id) DO UPDATE
               SET tier = EXCLUDED.tier, registered_at = EXCLUDED.registered_at, updated_at = now()
               WHERE users.registered_at <= EXCLUDED.registered_at""",
        user_id,
        tier,
        at,
    )


async def insert_earning(conn: Connection, e: Earning) -> int | None:
    """None when the payment was already credited, else how many refunds await this credit."""
    pending: int | None = await conn.fetchval(
        """INSERT INTO earnings (payment_id, user_id, amount, currency, tier, coins)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (payment_id) DO NOTHING
           RETURNING (SELECT count(*) FROM refunds
                      WHERE payment_id = $1 AND settled_at IS NULL)""",
        e.payment_id,
        e.user_id,
        e.amount,
        e.currency,
        e.tier,
        e.coins,
    )
    return pending


async def get_earning(conn: Connection, payment_id: str) -> Earning | None:
    row = await conn.fetchrow(
        "SELECT payment_id, user_id, amount, currency, tier, coins FROM earnings "
        "WHERE payment_id = $1",
        payment_id,
    )
    return Earning(**dict(row)) if row else None


async def insert_refund(conn: Connection, r: Refund) -> bool:
    """False when this refund was already recorded."""
    fresh = await conn.fetchval(
        """INSERT INTO refunds
               (refund_id, payment_id, user_id, amount, refunded_total, currency, "full")
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (refund_id) DO NOTHING RETURNING true""",
        r.refund_id,
        r.payment_id,
        r.user_id,
        r.amount,
        r.refunded_total,
        r.currency,
        r.full,
    )
    return bool(fresh)


async def pending_refunds(conn: Connection, payment_id: str) -> list[Refund]:
    """Refunds that arrived before the credit, smallest running total first (their true order)."""
    rows = await conn.fetch(
        """SELECT refund_id, payment_id, user_id, amount, refunded_total, currency, "full"
           FROM refunds WHERE payment_id = $1 AND settled_at IS NULL
           ORDER BY refunded_total, "full", received_at, refund_id""",
        payment_id,
    )
    return [Refund(**dict(row)) for row in rows]


async def mark_settled(conn: Connection, refund_id: str, coins: int) -> None:
    await conn.execute(
        "UPDATE refunds SET settled_at = now(), coins = $2 WHERE refund_id = $1", refund_id, coins
    )


async def reversed_coins(conn: Connection, payment_id: str) -> int:
    """Coins already taken back from this payment (a positive number)."""
    total: int = await conn.fetchval(
        "SELECT COALESCE(-sum(coins), 0) FROM entries "
        "WHERE payment_id = $1 AND kind = 'cashback_reversal'",
        payment_id,
    )
    return total


_ENTRY_COLUMNS = (
    "seq, entry_id, user_id, kind, coins, payment_id, refund_id, balance_after, shortfall, "
    "created_at"
)


async def post_entry(conn: Connection, e: NewEntry) -> Entry:
    """Moves the balance and appends the entry in one statement, so they cannot disagree.

    The upsert holds the balance row's lock until commit, which orders a user's entries: their
    seq order is their balance order. An effect already posted fails on entries_effect and the
    whole statement, balance included, is undone.
    """
    row = await conn.fetchrow(
        f"""WITH moved AS (
                INSERT INTO balances AS b (user_id, coins) VALUES ($2, $4)
                ON CONFLICT (user_id) DO UPDATE
                    SET coins = b.coins + EXCLUDED.coins, updated_at = now()
                RETURNING coins)
            INSERT INTO entries
                (entry_id, user_id, kind, coins, payment_id, refund_id, balance_after)
            SELECT $1, $2, $3, $4, $5, $6, moved.coins FROM moved
            RETURNING {_ENTRY_COLUMNS}""",  # noqa: S608 - a constant column list, no values
        e.entry_id,
        e.user_id,
        e.kind,
        e.coins,
        e.payment_id,
        e.refund_id,
    )
    assert row is not None
    return Entry(**dict(row))


async def balance(pool: Pool, user_id: str) -> tuple[int, datetime | None]:
    row = await pool.fetchrow("SELECT coins, updated_at FROM balances WHERE user_id = $1", user_id)
    return (row["coins"], row["updated_at"]) if row else (0, None)


async def entries_page(
    pool: Pool, user_id: str, *, before_seq: int | None, limit: int
) -> list[Entry]:
    """Newest first; `before_seq` continues after the last entry of the previous page."""
    rows = await pool.fetch(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries
            WHERE user_id = $1 AND ($2::bigint IS NULL OR seq < $2)
            ORDER BY seq DESC LIMIT $3""",  # noqa: S608 - a constant column list, no values
        user_id,
        before_seq,
        limit,
    )
    return [Entry(**dict(row)) for row in rows]
