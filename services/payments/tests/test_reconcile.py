"""Reconciliation: gateway timeouts are "unknown", and a later pass settles them correctly."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from payments_testkit import Api

from payments.app import build_gateways
from payments.reconcile import Reconciler
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.testing.waiting import wait_for

SLOW = 2.0  # seconds the fake takes, past the service's 1 s gateway timeout


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=2)


def orders_of(razorpay: RazorpayFake, payment_id: str) -> list[str]:
    """The ids of the Razorpay orders made for our payment (its id is their receipt)."""
    return [o["id"] for o in list(razorpay.orders.values()) if o["receipt"] == payment_id]


async def reconciler(api: Api, stack: AsyncExitStack) -> Reconciler:
    gateways = await build_gateways(api.settings(), stack)
    return Reconciler(
        UnitOfWork(api.pool, lambda: None), gateways, after_seconds=86_400, batch=1_000
    )


async def test_stripe_create_timeout_is_settled_by_reconciliation(
    api: Api, stripe: StripeFake, stack: AsyncExitStack, user: str
) -> None:
    stripe.delay_next(1, SLOW, path="/v1/payment_intents", method="POST")

    response = await api.create(user, gateway="stripe")

    assert response.status == 503
    payment_id = (await response.json())["payment_id"]
    view = await api.get(payment_id)
    assert (view["status"], view["gateway_order_id"]) == ("created", None)
    # The intent was made all the same; the customer pays it.
    intent_id = await stripe.wait_for_requests_async(
        1, "/v1/payment_intents", method="POST", where=lambda r: payment_id in str(r.form)
    )
    [intent] = [
        i for i in stripe.payment_intents.values() if i["metadata"]["payment_id"] == payment_id
    ]
    stripe.succeed(intent["id"])
    assert intent_id

    report = await (await reconciler(api, stack)).run_once(later())

    assert report.settled >= 1
    view = await api.get(payment_id)
    assert (view["status"], view["gateway_order_id"]) == ("captured", intent["id"])
    [event] = await api.events(payment_id, "payment.success")
    assert event["amount"] == 50_000
    # Our fixed idempotency key made the repeat return the first intent, not a second one.
    mine = [i for i in stripe.payment_intents.values() if i["metadata"]["payment_id"] == payment_id]
    assert len(mine) == 1


async def test_razorpay_create_timeout_is_settled_on_the_order_it_made(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    razorpay.delay_next(1, SLOW, path="/v1/orders", method="POST")

    response = await api.create(user)

    assert response.status == 503
    payment_id = (await response.json())["payment_id"]
    # Razorpay made the order all the same, after our timeout; the customer pays it.
    [order_id] = await wait_for(lambda: orders_of(razorpay, payment_id), message="the late order")
    paid = razorpay.capture(order_id)

    await (await reconciler(api, stack)).run_once(later())

    view = await api.get(payment_id)
    assert (view["status"], view["gateway_order_id"]) == ("captured", order_id)
    assert view["gateway_payment_id"] == paid["id"]
    assert orders_of(razorpay, payment_id) == [order_id]  # found by its receipt, not made again
    assert [r.query for r in razorpay.requests_to("/v1/orders", "GET")][-1:] == [
        {"receipt": payment_id}
    ]
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_a_create_that_never_reached_razorpay_is_made_once_by_reconciliation(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    razorpay.drop_next(1, path="/v1/orders", method="POST")
    response = await api.create(user)
    assert response.status == 503
    payment_id = (await response.json())["payment_id"]
    assert orders_of(razorpay, payment_id) == []

    await (await reconciler(api, stack)).run_once(later())

    [order_id] = orders_of(razorpay, payment_id)
    view = await api.get(payment_id)
    assert (view["status"], view["gateway_order_id"]) == ("created", order_id)


async def test_a_timeout_while_reconciling_is_unknown_never_failure(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user)
    razorpay.delay_next(1, SLOW, path="/payments", method="GET")
    job = await reconciler(api, stack)

    first = await job.run_once(later())

    assert first.unknown >= 1
    assert (await api.get(created["payment_id"]))["status"] == "created"
    razorpay.capture(created["gateway_order_id"])
    await job.run_once(later())
    assert (await api.get(created["payment_id"]))["status"] == "captured"
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_payment_nobody_has_paid_yet_is_left_as_it_is(
    api: Api, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user)

    report = await (await reconciler(api, stack)).run_once(later())

    assert report.unchanged >= 1
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.events(created["payment_id"]) == []


async def test_a_refund_whose_answer_was_lost_is_settled_once(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created, paid = await api.captured(user)
    razorpay.drop_next(1, path="/refund", method="POST", after_handling=True)

    response = await api.refund(created["payment_id"], 10_000)

    assert response.status == 201
    made = await response.json()
    assert (made["status"], made["gateway_refund_id"]) == ("pending", None)
    [at_gateway] = [r for r in razorpay.refunds.values() if r["payment_id"] == paid["id"]]
    razorpay.set_refund_status(at_gateway["id"], "processed")

    await (await reconciler(api, stack)).run_once(later())

    view = await api.get(created["payment_id"])
    assert (view["status"], view["refunded_total"]) == ("partially_refunded", 10_000)
    assert view["refunds"][0]["gateway_refund_id"] == at_gateway["id"]
    assert len([r for r in razorpay.refunds.values() if r["payment_id"] == paid["id"]]) == 1
    [event] = await api.events(created["payment_id"], "payment.refunded")
    assert (event["refund_id"], event["amount"]) == (made["refund_id"], 10_000)
