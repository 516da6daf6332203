"""Orders come from the commerce side and amounts from the server: a user names their order only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from payments_testkit import Api

from rtmn_shared.events.catalogue import OrderPlaced
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.waiting import wait_for

COMMERCE = ("commerce", "service")


def new_order() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


async def payments_of(api: Api, order_id: str) -> list[str]:
    rows = await api.pool.fetch("SELECT id FROM payments WHERE order_id = $1", order_id)
    return [r["id"] for r in rows]


async def test_a_users_create_pays_the_orders_amount_and_may_not_set_one(
    api: Api, user: str
) -> None:
    order_id = new_order()
    await api.place_order(user, order_id, amount=249_900)
    cheap = {"order_id": order_id, "amount": 100, "merchant_id": "m_42", "order_number": "R"}

    bent = await api.client.post("/api/payments/create", json=cheap, headers=api.suite.bearer(user))
    created = await api.pay(user, order_id)

    assert bent.status == 403
    assert "'service' scope" in (await bent.json())["detail"]
    assert created.status == 201
    body = await created.json()
    assert (body["amount"], body["currency"]) == (249_900, "INR")
    assert api.razorpay.orders[body["gateway_order_id"]]["amount"] == 249_900
    assert (await api.get(body["payment_id"], user))["merchant_id"] == "m_42"
    assert await payments_of(api, order_id) == [body["payment_id"]]


async def test_an_unknown_order_and_someone_elses_get_the_same_retryable_404(
    api: Api, user: str
) -> None:
    theirs = new_order()
    await api.place_order("someone_else", theirs)

    unknown = await api.pay(user, new_order())
    foreign = await api.pay(user, theirs, key="try-theirs")

    bodies = [await unknown.json(), await foreign.json()]
    assert (unknown.status, foreign.status) == (404, 404)
    assert bodies[0]["detail"] == bodies[1]["detail"]
    assert bodies[0]["retryable"] is True
    assert unknown.headers["Retry-After"] == foreign.headers["Retry-After"] == "1"
    assert await payments_of(api, theirs) == []
    # The key was released: it can be used again once the order arrives.
    assert (
        await api.pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", user)
        == 0
    )


async def test_a_second_create_answers_with_the_open_payment(api: Api, user: str) -> None:
    order_id = new_order()
    first = await api.create(user, order_id=order_id)
    again = await api.pay(user, order_id)
    keyed = await api.pay(user, order_id, key="second-tap")
    replayed = await api.pay(user, order_id, key="second-tap")

    assert (first.status, again.status, keyed.status, replayed.status) == (201, 200, 200, 200)
    ids = {(await r.json())["payment_id"] for r in (first, again, keyed, replayed)}
    orders = {(await r.json())["gateway_order_id"] for r in (first, again, keyed, replayed)}
    assert (len(ids), len(orders)) == (1, 1)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert await payments_of(api, order_id) == list(ids)


@pytest.mark.parametrize("keyed", [False, True])
async def test_five_racing_creates_for_one_order_make_one_payment(
    api: Api, user: str, keyed: bool
) -> None:
    order_id = new_order()
    await api.place_order(user, order_id)

    answers = await asyncio.gather(
        *(api.pay(user, order_id, key=f"tap-{n}" if keyed else None) for n in range(5))
    )

    assert sorted(a.status for a in answers) == [200] * 4 + [201]
    made = await payments_of(api, order_id)
    assert len(made) == 1
    assert {(await a.json())["payment_id"] for a in answers if a.status < 300} == set(made)


async def test_a_paid_order_cannot_be_paid_again(api: Api, user: str) -> None:
    order_id = new_order()
    created, _ = await api.captured(user, order_id=order_id)

    again = await api.pay(user, order_id)
    keyed = await api.pay(user, order_id, key="pay-twice")

    assert (again.status, keyed.status) == (409, 409)
    assert "paid already" in (await again.json())["detail"]
    assert await payments_of(api, order_id) == [created["payment_id"]]


async def test_a_create_racing_the_capture_of_the_open_payment_waits_and_refuses(
    api: Api, user: str
) -> None:
    order_id = new_order()
    first = await api.created(user, order_id=order_id)
    async with api.pool.acquire() as conn, conn.transaction():
        # What the capture's statement does, held open while the create arrives.
        await conn.execute(
            """UPDATE payments SET status = 'captured', captured_amount = amount,
                   gateway_payment_id = 'pay_racing', paid_at = now() WHERE id = $1""",
            first["payment_id"],
        )
        racing = asyncio.ensure_future(api.pay(user, order_id))
        await wait_for(
            lambda: api.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            ),
            message="the create waiting for the capture",
        )
    answer = await racing

    assert answer.status == 409
    assert await payments_of(api, order_id) == [first["payment_id"]]


async def test_a_failed_payment_leaves_room_for_another(api: Api, user: str) -> None:
    order_id = new_order()
    first = await api.created(user, order_id=order_id)
    failed = api.razorpay.fail_payment(first["gateway_order_id"])
    webhook = api.razorpay.build_webhook("payment.failed", payment_id=failed["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200

    second = await api.pay(user, order_id)

    assert second.status == 201
    assert (await second.json())["payment_id"] != first["payment_id"]


async def test_a_service_create_registers_the_order_for_its_user(api: Api, user: str) -> None:
    order_id = new_order()
    terms = {"order_id": order_id, "order_number": "R-7", "merchant_id": "m_7",
             "amount": 70_000, "currency": "INR", "user_id": user}  # fmt: skip
    service = api.suite.bearer(*COMMERCE)

    created = await api.client.post("/api/payments/create", json=terms, headers=service)
    other_terms = await api.client.post(
        "/api/payments/create", json={**terms, "amount": 100}, headers=service
    )
    missing = await api.client.post(
        "/api/payments/create", json={"order_id": new_order()}, headers=service
    )
    users = await api.pay(user, order_id)

    assert created.status == 201, await created.text()
    payment_id = (await created.json())["payment_id"]
    assert (await api.get(payment_id, user))["amount"] == 70_000  # the user sees their payment
    assert other_terms.status == 409
    assert missing.status == 422
    assert "amount" in (await missing.json())["detail"]
    assert users.status == 200
    assert (await users.json())["payment_id"] == payment_id


async def test_a_service_create_refused_under_its_key_registers_no_order(
    api: Api, user: str
) -> None:
    service = {**api.suite.bearer(*COMMERCE), "Idempotency-Key": f"order-{user}"}
    first = {"order_id": new_order(), "order_number": "R-8", "merchant_id": "m_8",
             "amount": 80_000, "user_id": user}  # fmt: skip
    other = {**first, "order_id": new_order()}

    made = await api.client.post("/api/payments/create", json=first, headers=service)
    reused = await api.client.post("/api/payments/create", json=other, headers=service)

    assert (made.status, reused.status) == (201, 422)
    assert (
        await api.pool.fetchval(
            "SELECT count(*) FROM orders WHERE order_id = $1", other["order_id"]
        )
        == 0
    )


@pytest.fixture
async def channel(suite: Suite) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(suite.amqp_url)
    yield await connection.channel(publisher_confirms=True)
    await connection.close()


def placed(order_id: str, user: str, amount: int) -> CloudEvent:
    data = OrderPlaced(order_id=order_id, order_number="R-9", user_id=user, merchant_id="m_9",
                       amount=amount, currency="INR")  # fmt: skip
    return CloudEvent.of(data, source="rtmn/commerce")


async def test_order_placed_on_the_broker_is_recorded_once_and_a_contradiction_dead_letters(
    api: Api, channel: AbstractChannel, producers: Producers, user: str
) -> None:
    order_id = new_order()
    event = placed(order_id, user, 12_300)

    await producers.publish(event, times=2)  # as the commerce side's login
    await wait_for(
        lambda: api.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'payments.orders' AND event_id = $1",
            str(event.id),
        ),
        message="order.placed consumed",
    )
    created = await api.pay(user, order_id)
    await producers.publish(placed(order_id, user, 1))
    dlq = await channel.declare_queue("payments.orders.dlq", passive=True)

    async def dead_lettered() -> bool:
        message = await dlq.get(fail=False, no_ack=True)
        return message is not None and message.message_id != str(event.id)

    await wait_for(dead_lettered, message="the contradicting order.placed dead-lettered")
    assert created.status == 201
    assert (await created.json())["amount"] == 12_300
    row = await api.pool.fetchrow("SELECT amount, source FROM orders WHERE order_id = $1", order_id)
    assert (row["amount"], row["source"]) == (12_300, "order.placed")
