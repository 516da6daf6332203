"""The ledger on the real PostgreSQL: credits, reversals, ordering, replays, races, immutability."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from wallet_events import payment, placed, refund, uid

from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import UserRegistered
from rtmn_shared.events.outcomes import GiveUp
from wallet import store
from wallet.domain import CASHBACK_REVERSAL
from wallet.store import NewEntry

# The `deliver` fixture (conftest): applies one event as the consumer does; False = inbox dup.
Deliver = Callable[..., Awaitable[bool]]


async def entries(pool: Pool, user_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT kind, coins, payment_id, refund_id, balance_after FROM entries "
        "WHERE user_id = $1 ORDER BY seq",
        user_id,
    )


async def assert_balance_is_ledger_sum(pool: Pool, user_id: str) -> int:
    row = await pool.fetchrow(
        """SELECT (SELECT coins FROM balances WHERE user_id = $1) AS balance,
                  (SELECT sum(coins) FROM entries WHERE user_id = $1) AS total""",
        user_id,
    )
    assert row is not None
    assert row["balance"] == row["total"], dict(row)
    # Each balance_after is the running sum in seq order: no lost or interleaved update.
    running = await pool.fetch(
        "SELECT balance_after, sum(coins) OVER (ORDER BY seq) AS total FROM entries "
        "WHERE user_id = $1 ORDER BY seq",
        user_id,
    )
    assert [r["balance_after"] for r in running] == [r["total"] for r in running]
    return int(row["balance"] or 0)


async def outbox_events(pool: Pool, user_id: str) -> list[tuple[str, int, int]]:
    rows = await pool.fetch(
        "SELECT type, (payload->'data'->>'coins')::int AS coins, "
        "(payload->'data'->>'balance_after')::int AS balance_after "
        "FROM outbox WHERE subject = $1 ORDER BY id",
        user_id,
    )
    return [(r["type"], r["coins"], r["balance_after"]) for r in rows]


async def test_a_payment_credits_cashback_and_emits_wallet_credited(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    assert await deliver(payment(user, 49_900))
    assert [
        (e["kind"], e["coins"], e["balance_after"]) for e in await entries(wallet_pool, user)
    ] == [("cashback", 24, 24)]
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 24
    assert await outbox_events(wallet_pool, user) == [("wallet.credited", 24, 24)]


async def test_the_tier_comes_from_user_registered(wallet_pool: Pool, deliver: Deliver) -> None:
    user = uid("u")
    await deliver(UserRegistered(user_id=user, tier="Gold"))
    await deliver(payment(user, 49_900))
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [37]  # 24.95 × 1.5
    tier = await wallet_pool.fetchval("SELECT tier FROM earnings WHERE user_id = $1", user)
    assert tier == "gold"


async def quotes(pool: Pool, order_id: str) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT (payload->'data'->>'coins')::int AS coins, payload->'data'->>'tier' AS tier "
        "FROM outbox WHERE type = 'wallet.cashback_quoted' AND subject = $1 ORDER BY id",
        order_id,
    )
    return [(r["coins"], r["tier"]) for r in rows]


async def test_an_order_is_quoted_once_the_coins_its_payment_is_then_credited(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    await deliver(UserRegistered(user_id=user, tier="gold"))
    paid = payment(user, 49_900)
    event_id = uuid.uuid4()
    assert await deliver(placed(paid), event_id)
    assert not await deliver(placed(paid), event_id)  # redelivered: the inbox stops it
    assert await quotes(wallet_pool, paid.order_id) == [(37, "gold")]
    assert await entries(wallet_pool, user) == []  # a quote moves no coins

    await deliver(paid)
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [37]


async def test_an_order_that_earns_nothing_is_quoted_zero(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    paid = payment(uid("u"), 100)  # ₹1 × 5 % → 0.05 → 0 coins
    await deliver(placed(paid))
    assert await quotes(wallet_pool, paid.order_id) == [(0, "bronze")]


async def test_a_payment_is_credited_once_whatever_is_redelivered_or_replayed(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    paid = payment(user, 100_000)
    event_id = uuid.uuid4()
    assert await deliver(paid, event_id)
    assert not await deliver(paid, event_id)  # the same delivery again: the inbox stops it
    assert await deliver(paid)  # a replay under a new event id: the earnings row stops it
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [50]
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 50
    assert len(await outbox_events(wallet_pool, user)) == 1


async def test_partial_reversals_then_the_final_one_take_back_exactly_the_credit(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    paid = payment(user, 200_000)  # ₹2000 → 100 coins
    await deliver(paid)
    for cut, total in ((66_600, 66_600), (66_600, 133_200), (66_800, 200_000)):
        r = refund(paid, cut, total)
        assert await deliver(r)
        assert await deliver(r)  # replayed under a new event id: the refunds row stops it
    coins = [e["coins"] for e in await entries(wallet_pool, user)]
    assert coins == [100, -33, -33, -34]
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 0
    assert [t for t, _, _ in await outbox_events(wallet_pool, user)] == [
        "wallet.credited",
        "wallet.debited",
        "wallet.debited",
        "wallet.debited",
    ]
    assert (await outbox_events(wallet_pool, user))[-1][1:] == (34, 0)


async def test_a_refund_before_its_credit_waits_and_is_settled_by_the_credit(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    paid = payment(user, 200_000)
    half = refund(paid, 100_000, 100_000)
    rest = refund(paid, 100_000, 200_000)
    await deliver(rest)
    await deliver(half)
    assert await entries(wallet_pool, user) == []
    pending = await wallet_pool.fetchval(
        "SELECT count(*) FROM refunds WHERE payment_id = $1 AND settled_at IS NULL",
        paid.payment_id,
    )
    assert pending == 2
    await deliver(paid)
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [100, -50, -50]
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 0


async def test_a_payment_that_earned_nothing_reverses_nothing(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    paid = payment(user, 1_000)  # ₹10 → 0.5 coin → 0
    await deliver(paid)
    await deliver(refund(paid, 1_000, 1_000))
    assert await entries(wallet_pool, user) == []
    settled = await wallet_pool.fetchrow(
        "SELECT settled_at IS NOT NULL AS done, coins FROM refunds WHERE payment_id = $1",
        paid.payment_id,
    )
    assert settled is not None
    assert (settled["done"], settled["coins"]) == (True, 0)


async def test_an_inconsistent_refund_is_given_up(deliver: Deliver) -> None:
    paid = payment(uid("u"), 200_000)
    with pytest.raises(GiveUp, match="refunded_total"):
        await deliver(refund(paid, 50_000, 10_000))


async def test_a_reversal_may_overdraw_and_records_the_shortfall(wallet_pool: Pool) -> None:
    user = uid("u")
    async with wallet_pool.acquire() as conn, conn.transaction():
        credit = await store.post_entry(
            conn, NewEntry(uuid.uuid4(), user, "cashback", 10, uid("pay"), None)
        )
        # As if 8 of the 10 coins had been spent elsewhere meanwhile.
        spent = await store.post_entry(
            conn, NewEntry(uuid.uuid4(), user, CASHBACK_REVERSAL, -8, uid("pay"), uid("r"))
        )
        taken = await store.post_entry(
            conn, NewEntry(uuid.uuid4(), user, CASHBACK_REVERSAL, -10, credit.payment_id, uid("r"))
        )
    assert (spent.balance_after, spent.shortfall) == (2, 0)
    assert (taken.balance_after, taken.shortfall) == (-8, 8)
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == -8


async def test_the_effect_key_refuses_a_second_credit_and_undoes_its_balance_move(
    wallet_pool: Pool,
) -> None:
    user, pid = uid("u"), uid("pay")
    async with wallet_pool.acquire() as conn:
        await store.post_entry(conn, NewEntry(uuid.uuid4(), user, "cashback", 5, pid, None))
        with pytest.raises(asyncpg.UniqueViolationError, match="entries_effect"):
            await store.post_entry(conn, NewEntry(uuid.uuid4(), user, "cashback", 5, pid, None))
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 5


async def test_entries_cannot_be_changed_or_removed(
    wallet_pool: Pool, admin: asyncpg.Connection[asyncpg.Record], deliver: Deliver
) -> None:
    user = uid("u")
    await deliver(payment(user, 49_900))
    # The service's own role has no right to; a superuser is stopped by the trigger.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await wallet_pool.execute("UPDATE entries SET coins = 1000 WHERE user_id = $1", user)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await wallet_pool.execute("DELETE FROM entries WHERE user_id = $1", user)
    for sql in (
        "UPDATE wallet.entries SET coins = 1000 WHERE user_id = $1",
        "DELETE FROM wallet.entries WHERE user_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
            await admin.execute(sql, user)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await admin.execute("TRUNCATE wallet.entries CASCADE")
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [24]


async def test_a_hundred_concurrent_credits_for_one_user_add_up(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    results = await asyncio.gather(*(deliver(payment(user, 10_000 + n)) for n in range(100)))
    assert all(results)
    # ₹100.00..₹100.99 each earn floor(5.00..5.0495) = 5 coins.
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 500
    assert len(await entries(wallet_pool, user)) == 100


async def test_racing_replays_of_one_payment_and_its_refund_apply_once(
    wallet_pool: Pool, deliver: Deliver
) -> None:
    user = uid("u")
    paid = payment(user, 200_000)
    full = refund(paid, 200_000, 200_000)
    # Twenty copies of each under distinct event ids, so the inbox cannot help: only the
    # payment lock and the effect rows stand between them and a double credit.
    await asyncio.gather(*(deliver(e) for _ in range(20) for e in (full, paid)))
    assert [e["coins"] for e in await entries(wallet_pool, user)] == [100, -100]
    assert await assert_balance_is_ledger_sum(wallet_pool, user) == 0
