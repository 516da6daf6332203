"""A webhook decided on a payment read without a lock writes only if the row is still as read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from payments_testkit import Api

from payments import outcome_store, store
from payments.batching import Batcher
from payments.domain import Captured, Failed
from payments.inbound import Inbound
from payments.outcome_store import Saved
from payments.store import Delivery
from payments.transitions import apply_signal, decide
from payments.webhooks import PaymentCommand
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_shared.db import Pool
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.testing.waiting import wait_for

NOW = datetime.now(UTC)  # when the provider made these deliveries' events


async def read(pool: Pool, payment_id: str) -> store.PaymentRow:
    async with pool.acquire() as conn:
        payment = await store.get_payment(conn, payment_id)
    assert payment is not None
    return payment


async def test_an_outcome_decided_on_a_stale_read_writes_nothing(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created, paid = await api.paid(user)
    as_read = await read(pool, created["payment_id"])
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200  # captures it meanwhile

    late_failure = Failed(None, "BAD_REQUEST_ERROR", "declined")
    async with pool.acquire() as conn:
        saved = await apply_signal(
            conn, as_read, late_failure, delivery=Delivery("razorpay", "evt_stale_1", "x", NOW)
        )

    assert saved is Saved.STALE
    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert await api.events(created["payment_id"], "payment.failed") == []
    assert await api.deliveries_recorded("evt_stale_1") == 0


async def test_a_delivery_without_a_transaction_applies_once_and_wakes_the_relay(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created, paid = await api.paid(user)
    woken: list[bool] = []
    unit = UnitOfWork(pool, lambda: woken.append(True))
    inbound = Inbound(unit, Batcher(unit))
    capture = PaymentCommand(created["gateway_order_id"], Captured(paid["id"], 50_000, "INR"))

    first = await inbound.handle(Delivery("razorpay", "evt_lock_1", "x", NOW), capture)
    again = await inbound.handle(Delivery("razorpay", "evt_lock_1", "x", NOW), capture)
    other = await inbound.handle(Delivery("razorpay", "evt_lock_2", "x", NOW), capture)

    assert (first, again, other) == (True, False, True)
    assert woken
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_webhook_that_loses_the_race_for_the_row_is_decided_again_on_what_won(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created, paid = await api.paid(user)
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    async with pool.acquire() as rival, rival.transaction():
        locked = await store.get_payment(rival, created["payment_id"], lock=True)
        assert locked is not None
        # The webhook reads the payment as created, then waits for the rival's row lock.
        sent = asyncio.ensure_future(api.razorpay_webhook(webhook, event_id="evt_race_loser"))
        await wait_for(
            lambda: pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock' AND query LIKE 'WITH %'"""
            ),
            message="the webhook waiting for the row lock",
        )
        capture = Captured(paid["id"], 50_000, "INR")
        won = Delivery("razorpay", "evt_race_winner", "payment.captured", NOW)
        assert await apply_signal(rival, locked, capture, delivery=won) is Saved.APPLIED

    response = await sent

    assert (response.status, (await response.json())["status"]) == (200, "processed")
    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert len(await api.events(created["payment_id"], "payment.success")) == 1
    assert await api.deliveries_recorded("evt_race_loser", "evt_race_winner") == 2


async def test_one_statement_writes_many_outcomes_each_under_its_own_check(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    payments = []
    for _ in range(3):
        created, paid = await api.paid(user)
        payments.append((await read(pool, created["payment_id"]), paid["id"]))
    (fresh, fresh_paid), (raced, raced_paid), (seen, seen_paid) = payments
    won = razorpay.build_webhook("payment.captured", payment_id=raced_paid)
    assert (await api.razorpay_webhook(won)).status == 200  # `raced` changes after it was read
    async with pool.acquire() as conn:
        await store.record_delivery(conn, Delivery("razorpay", "evt_batch_seen", "x", NOW))

    changes = [
        decide(payment, Captured(paid, 50_000, "INR"), Delivery("razorpay", event, "x", NOW))
        for payment, paid, event in (
            (fresh, fresh_paid, "evt_batch_fresh"),
            (raced, raced_paid, "evt_batch_raced"),
            (seen, seen_paid, "evt_batch_seen"),
        )
    ]
    async with pool.acquire() as conn:
        saved = await outcome_store.save_outcomes(conn, changes)

    assert saved == [Saved.APPLIED, Saved.STALE, Saved.DUPLICATE]
    statuses = [(await api.get(p.id))["status"] for p in (fresh, raced, seen)]
    assert statuses == ["captured", "captured", "created"]
    events = [len(await api.events(p.id, "payment.success")) for p in (fresh, raced, seen)]
    assert events == [1, 1, 0]
    assert await api.deliveries_recorded("evt_batch_raced") == 0


async def test_concurrent_webhooks_for_many_payments_each_capture_once(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    orders = []
    for n in range(12):
        orders.append(await api.paid(f"{user}_{n}"))  # 5 creates a user, by the rate limit
    unit = UnitOfWork(pool)
    batcher = Batcher(unit, lanes=2)
    inbound = Inbound(unit, batcher)

    def webhook(order: dict[str, Any], paid: dict[str, Any], copy: int) -> Any:
        capture = Captured(paid["id"], 50_000, "INR")
        # Two copies of one delivery and one redelivery under a new event id, per payment.
        event = f"evt_many_{paid['id']}_{min(copy, 1)}"
        return inbound.handle(
            Delivery("razorpay", event, "payment.captured", NOW),
            PaymentCommand(order["gateway_order_id"], capture),
        )

    outcomes = await asyncio.gather(
        *(webhook(order, paid, copy) for copy in range(3) for order, paid in orders)
    )
    await batcher.close()

    assert outcomes.count(True) == 2 * len(orders)  # each distinct delivery once
    for order, _ in orders:
        assert (await api.get(order["payment_id"]))["status"] == "captured"
        assert len(await api.events(order["payment_id"], "payment.success")) == 1
