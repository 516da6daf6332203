"""A webhook decided on a payment read without a lock writes only if the row is still as read."""

from __future__ import annotations

import asyncio
from typing import Any

from payments import inbound, store
from payments.domain import Captured, Failed
from payments.store import Delivery, Saved
from payments.transitions import apply_signal
from payments.webhooks import PaymentCommand
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_shared.db import Pool
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.testing.waiting import wait_for

Api = Any  # the conftest fixture's class; conftest is not importable under importlib mode


async def test_an_outcome_decided_on_a_stale_read_writes_nothing(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created = await api.created(user)
    paid = razorpay.capture(created["gateway_order_id"])
    async with pool.acquire() as conn:
        as_read = await store.get_payment(conn, created["payment_id"])
    assert as_read is not None
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200  # captures it meanwhile

    late_failure = Failed(None, "BAD_REQUEST_ERROR", "declined")
    async with pool.acquire() as conn:
        saved = await apply_signal(
            conn, as_read, late_failure, delivery=Delivery("razorpay", "evt_stale_1", "x")
        )

    assert saved is Saved.STALE
    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert await api.events(created["payment_id"], "payment.failed") == []
    recorded = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE event_id = 'evt_stale_1'"
    )
    assert recorded == 0


async def test_a_delivery_without_a_transaction_applies_once_and_wakes_the_relay(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created = await api.created(user)
    paid = razorpay.capture(created["gateway_order_id"])
    woken: list[bool] = []
    unit = UnitOfWork(pool, lambda: woken.append(True))
    capture = PaymentCommand(created["gateway_order_id"], Captured(paid["id"], 50_000, "INR"))

    first = await inbound.handle(unit, Delivery("razorpay", "evt_lock_1", "x"), capture)
    again = await inbound.handle(unit, Delivery("razorpay", "evt_lock_1", "x"), capture)
    other = await inbound.handle(unit, Delivery("razorpay", "evt_lock_2", "x"), capture)

    assert (first, again, other) == (True, False, True)
    assert woken
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_webhook_that_loses_the_race_for_the_row_is_decided_again_on_what_won(
    api: Api, razorpay: RazorpayFake, pool: Pool, user: str
) -> None:
    created = await api.created(user)
    paid = razorpay.capture(created["gateway_order_id"])
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    async with pool.acquire() as rival, rival.transaction():
        locked = await store.get_payment(rival, created["payment_id"], lock=True)
        assert locked is not None
        # The webhook reads the payment as created, then waits for the rival's row lock.
        sent = asyncio.ensure_future(api.razorpay_webhook(webhook, event_id="evt_race_loser"))
        await wait_for(
            lambda: pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock' AND query LIKE 'WITH locked%'"""
            ),
            message="the webhook waiting for the row lock",
        )
        capture = Captured(paid["id"], 50_000, "INR")
        won = Delivery("razorpay", "evt_race_winner", "payment.captured")
        assert await apply_signal(rival, locked, capture, delivery=won) is Saved.APPLIED

    response = await sent

    assert (response.status, (await response.json())["status"]) == (200, "processed")
    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert len(await api.events(created["payment_id"], "payment.success")) == 1
    recorded = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE event_id LIKE 'evt_race_%'"
    )
    assert recorded == 2
