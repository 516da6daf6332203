"""Creating payments and the checkout callback, through HTTP against the Razorpay fake."""

from __future__ import annotations

import asyncio

import pytest
from payments_testkit import Api

from rtmn_fakes.razorpay import RazorpayFake, checkout_signature
from rtmn_shared.testing.waiting import wait_for


async def test_create_makes_a_razorpay_order_with_our_id_as_receipt(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user, order_id="ord_receipt_1")

    assert created["status"] == "created"
    assert created["payment_id"].startswith("pmt_")
    order_id = created["gateway_order_id"]
    assert created["checkout"] == {"key_id": api.razorpay.key_id, "razorpay_order_id": order_id}
    order = razorpay.orders[order_id]
    assert (order["receipt"], order["amount"], order["currency"]) == (
        created["payment_id"],
        50_000,
        "INR",
    )
    assert order["notes"] == {
        "payment_id": created["payment_id"],
        "order_id": "ord_receipt_1",
        "order_number": "R-1001",
        "merchant_id": "m_42",
        "user_id": user,
    }
    view = await api.get(created["payment_id"], user)
    assert (view["status"], view["gateway_order_id"], view["refunds"]) == ("created", order_id, [])


async def test_same_idempotency_key_and_body_returns_the_first_response(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    first = await api.create(user, key="checkout-1", order_id="ord_idem_1")
    again = await api.create(user, key="checkout-1", order_id="ord_idem_1")
    other = await api.create(user, key="checkout-1", order_id="ord_idem_2")

    assert (first.status, again.status, other.status) == (201, 201, 422)
    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    receipts = [o["receipt"] for o in razorpay.orders.values()]
    assert receipts.count((await first.json())["payment_id"]) == 1
    assert other.content_type == "application/problem+json"


async def test_concurrent_requests_with_one_key_make_one_payment(api: Api, user: str) -> None:
    responses = await asyncio.gather(
        *(api.create(user, key="checkout-race", order_id="ord_race") for _ in range(5))
    )

    made = {(await r.json())["payment_id"] for r in responses if r.status == 201}
    assert len(made) == 1
    assert {r.status for r in responses} <= {201, 409}
    rows = await api.pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user)
    assert rows == 1


async def test_sixth_create_in_the_window_is_429_with_retry_after(api: Api, user: str) -> None:
    statuses = [(await api.create(user)).status for _ in range(5)]
    limited = await api.create(user)

    assert statuses == [201] * 5
    assert limited.status == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 900
    other_user = await api.create(user + "_other")
    assert other_user.status == 201


async def test_a_keyed_create_over_the_limit_stores_nothing_and_replays_are_not_limited(
    api: Api, user: str
) -> None:
    made = [(await api.create(user, key=f"limit-{n}", order_id=f"ord_limit_{n}")) for n in range(5)]
    limited = await api.create(user, key="limit-5", order_id="ord_limit_5")
    replayed = await api.create(user, key="limit-0", order_id="ord_limit_0")

    assert [r.status for r in made] == [201] * 5
    assert limited.status == 429
    assert (replayed.status, replayed.headers["Idempotent-Replayed"]) == (201, "true")
    assert await api.pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user) == 5
    keys = await api.pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = 'limit-5'", user
    )
    assert keys == 0


async def test_a_retry_racing_the_first_try_answers_with_the_order_recorded_first(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    razorpay.delay_next(1, 0.5, path="/v1/orders", method="POST")
    first = asyncio.ensure_future(api.create(user, key="checkout-overtaken", order_id="ord_over"))
    await wait_for(
        lambda: [
            r
            for r in razorpay.requests_to("/v1/orders", "POST")
            if (r.json or {}).get("notes", {}).get("user_id") == user
        ],
        message="the first try's order request at Razorpay",
    )

    retried = await api.create(user, key="checkout-overtaken", order_id="ord_over")
    overtaken = await first

    assert (retried.status, overtaken.status) == (201, 201)
    assert await overtaken.json() == await retried.json()
    payment_id, order_id = (
        (await retried.json())["payment_id"],
        (await retried.json())["gateway_order_id"],
    )
    assert (await api.get(payment_id))["gateway_order_id"] == order_id
    # Razorpay orders have no idempotency key: the first try's late one is left unpaid.
    orders = [o["id"] for o in list(razorpay.orders.values()) if o["receipt"] == payment_id]
    assert orders == [order_id, orders[1]]
    answer = await api.pool.fetchval(
        "SELECT response->>'gateway_order_id' FROM idempotency_keys WHERE user_id = $1", user
    )
    assert answer == order_id


async def test_invalid_body_is_422_and_stores_nothing(api: Api, user: str) -> None:
    response = await api.client.post(
        "/api/payments/create",
        json={"order_id": "o", "gateway": "paypal"},
        headers=api.suite.bearer(user),
    )

    assert response.status == 422
    assert await api.pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user) == 0


@pytest.mark.parametrize(
    ("gateway", "amount", "currency", "detail"),
    [
        ("razorpay", 99, "INR", "smallest amount"),
        ("upi", 1, "INR", "smallest amount"),
        ("stripe", 49, "INR", "smallest amount"),
        ("razorpay", 50_000, "XYZ", "not accepted"),
        ("upi", 50_000, "USD", "INR only"),
    ],
)
async def test_what_the_gateway_would_refuse_is_422_and_leaves_no_payment(
    api: Api, user: str, gateway: str, amount: int, currency: str, detail: str
) -> None:
    razorpay_orders = len(api.razorpay.orders)
    service = {"order_id": f"ord_svc_{user}", "order_number": "n", "merchant_id": "m",
               "amount": amount, "currency": currency, "gateway": gateway,
               "user_id": user}  # fmt: skip

    users = await api.create(user, gateway=gateway, amount=amount, currency=currency)
    services = await api.client.post(
        "/api/payments/create", json=service, headers=api.suite.bearer("commerce", "service")
    )

    for response in (users, services):
        assert response.status == 422
        assert detail in (await response.json())["detail"]
    assert await api.pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user) == 0
    assert len(api.razorpay.orders) == razorpay_orders


async def test_verify_with_a_good_signature_converges_with_the_gateway(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user)
    order_id = created["gateway_order_id"]
    paid = razorpay.capture(order_id)
    body = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": paid["id"],
        "razorpay_signature": checkout_signature(order_id, paid["id"], api.key_secret),
    }

    response = await api.client.post(
        "/api/payments/verify", json=body, headers=api.suite.bearer(user)
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "captured"
    [event] = await api.events(created["payment_id"], "payment.success")
    assert event["gateway_payment_id"] == paid["id"]
    # The webhook that follows changes nothing and emits nothing more.
    webhook = razorpay.build_webhook("payment.captured", payment_id=paid["id"])
    assert (await api.razorpay_webhook(webhook)).status == 200
    assert len(await api.events(created["payment_id"])) == 1


async def test_verify_with_a_bad_signature_or_someone_elses_order_is_refused(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user)
    order_id = created["gateway_order_id"]
    paid = razorpay.capture(order_id)
    forged = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": paid["id"],
        "razorpay_signature": checkout_signature(order_id, paid["id"], "not-the-key-secret"),
    }

    bad = await api.client.post("/api/payments/verify", json=forged, headers=api.suite.bearer(user))
    stranger = await api.client.post(
        "/api/payments/verify", json=forged, headers=api.suite.bearer("someone_else")
    )

    assert (bad.status, stranger.status) == (400, 404)
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.events(created["payment_id"]) == []


async def test_another_users_payment_is_not_found(api: Api, user: str) -> None:
    created = await api.created(user)

    response = await api.client.get(
        f"/api/payments/{created['payment_id']}", headers=api.suite.bearer("intruder")
    )

    assert response.status == 404


async def test_gateway_refusal_is_502_and_the_key_can_be_retried(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    razorpay.fail_next(1, status=400, path="/v1/orders")

    refused = await api.create(user, key="checkout-refused", order_id="ord_refused")
    retried = await api.create(user, key="checkout-refused", order_id="ord_refused")

    assert refused.status == 502
    assert retried.status == 201
    assert (await retried.json())["gateway_order_id"] in razorpay.orders


async def test_a_gateway_refusal_is_answered_in_our_words_not_the_gateways(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    words = "LEAK-9c1e: merchant acc_77 is blocked by risk rule r-42"
    refusal = {"error": {"code": "BAD_REQUEST_ERROR", "description": words}}
    razorpay.fail_next(1, status=400, body=refusal, path="/v1/orders")

    refused = await api.create(user, key="checkout-words", order_id="ord_words")

    assert refused.status == 502
    text = await refused.text()
    assert "LEAK-9c1e" not in text
    assert "acc_77" not in text
    assert (await refused.json())["detail"] == "the payment gateway refused the order"


async def test_a_gateway_timeout_is_503_and_a_retry_with_the_key_resumes_that_payment(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    razorpay.delay_next(1, 2.0, path="/v1/orders", method="POST")

    timed_out = await api.create(user, key="checkout-timeout", order_id="ord_timeout")
    assert timed_out.status == 503
    assert "Retry-After" in timed_out.headers
    payment_id = (await timed_out.json())["payment_id"]
    # The client waits as told; meanwhile Razorpay has made the order all the same.
    [late] = await wait_for(
        lambda: [o for o in list(razorpay.orders.values()) if o["receipt"] == payment_id],
        message="the late order",
    )
    retried = await api.create(user, key="checkout-timeout", order_id="ord_timeout")

    assert retried.status == 201
    body = await retried.json()
    assert (body["payment_id"], body["gateway_order_id"]) == (payment_id, late["id"])
    assert (await api.get(payment_id))["gateway_order_id"] == late["id"]
    assert await api.pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user) == 1
    assert [o for o in list(razorpay.orders.values()) if o["receipt"] == payment_id] == [late]


async def test_a_nul_character_is_refused_with_a_4xx_never_a_500(api: Api, user: str) -> None:
    body = {"order_id": "a\x00b"}

    created = await api.client.post(
        "/api/payments/create", json=body, headers=api.suite.bearer(user)
    )
    fetched = await api.client.get("/api/payments/a%00b", headers=api.suite.bearer(user))
    refund = await api.client.post(
        "/api/payments/a%00b/refunds", json={}, headers=api.suite.bearer("ops_1", "payments:refund")
    )
    webhook = await api.razorpay_webhook(b'{"event":"payment.captured","x":"\\u0000"}')

    assert (created.status, fetched.status, refund.status, webhook.status) == (422, 400, 400, 400)
