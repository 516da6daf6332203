"""The Razorpay client against the contract fake: what each kind of answer becomes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from payments.domain import Captured, RefundStatus
from payments.providers.gateway import (
    GatewayRejected,
    GatewayUnavailable,
    NewPayment,
    RefundRequest,
)
from payments.providers.razorpay.client import RazorpayGateway
from rtmn_fakes.razorpay import RazorpayFake

TIMEOUT = 0.5


def new_payment(n: str, amount: int = 50_000) -> NewPayment:
    return NewPayment(f"pmt_client_{n}", "user_1", f"ord_{n}", "R-1", "m_42", amount, "INR")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def gateway(session: aiohttp.ClientSession, razorpay: RazorpayFake) -> RazorpayGateway:
    return RazorpayGateway(
        session, razorpay.key_id, razorpay.key_secret, timeout=TIMEOUT, base_url=razorpay.url
    )


async def test_an_order_is_asked_for_with_basic_auth_and_json(
    gateway: RazorpayGateway, razorpay: RazorpayFake
) -> None:
    checkout = await gateway.open(new_payment("auth"))

    [sent] = razorpay.requests_to("/v1/orders", "POST")[-1:]
    credentials = base64.b64decode(sent.headers["Authorization"].removeprefix("Basic "))
    assert credentials.decode() == f"{razorpay.key_id}:{razorpay.key_secret}"
    assert sent.headers["Content-Type"] == "application/json"
    order = razorpay.orders[checkout.gateway_order_id]
    assert (order["receipt"], order["amount"], order["currency"]) == (
        "pmt_client_auth",
        50_000,
        "INR",
    )
    assert await gateway.find(new_payment("auth")) == checkout


async def test_a_refusal_carries_razorpays_description_and_nothing_else(
    gateway: RazorpayGateway, razorpay: RazorpayFake
) -> None:
    with pytest.raises(GatewayRejected) as refused:
        await gateway.open(new_payment("tiny", amount=99))

    assert str(refused.value) == "The amount must be at least INR 1.00"


async def test_wrong_credentials_are_a_refusal_that_never_shows_the_secret(
    session: aiohttp.ClientSession, razorpay: RazorpayFake
) -> None:
    secret = "not-the-secret-0123456789"
    wrong = RazorpayGateway(
        session, razorpay.key_id, secret, timeout=TIMEOUT, base_url=razorpay.url
    )

    with pytest.raises(GatewayRejected) as refused:
        await wrong.open(new_payment("wrong_key"))

    assert str(refused.value) == "Authentication failed"
    assert secret not in str(refused.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (502, b"<html><body>Bad Gateway</body></html>"),
        (503, None),
        (429, None),  # rate limited
        (408, None),
        (404, b"<html>not found</html>"),  # not Razorpay answering
        (400, b'{"message": "no error object"}'),
    ],
)
async def test_what_leaves_the_outcome_unknown_is_unavailable(
    gateway: RazorpayGateway, razorpay: RazorpayFake, status: int, body: Any
) -> None:
    razorpay.fail_next(1, status=status, body=body, path="/v1/orders", method="POST")

    with pytest.raises(GatewayUnavailable):
        await gateway.open(new_payment(f"status_{status}"))


async def test_a_timeout_a_dropped_connection_and_html_for_json_are_unavailable(
    gateway: RazorpayGateway, razorpay: RazorpayFake
) -> None:
    order = (await gateway.open(new_payment("faults"))).gateway_order_id
    razorpay.delay_next(1, TIMEOUT * 3, path="/payments", method="GET")
    with pytest.raises(GatewayUnavailable):
        await gateway.status(order)
    # aiohttp itself retries an idempotent request once on a dropped keep-alive connection.
    razorpay.drop_next(1, path="/v1/orders", method="POST")
    with pytest.raises(GatewayUnavailable):
        await gateway.open(new_payment("dropped"))
    razorpay.malformed_next(1, path="/v1/orders", method="GET")
    with pytest.raises(GatewayUnavailable):
        await gateway.find(new_payment("faults"))


async def test_a_refund_still_in_progress_409_is_asked_again_under_the_same_key(
    gateway: RazorpayGateway, razorpay: RazorpayFake
) -> None:
    order = (await gateway.open(new_payment("refund"))).gateway_order_id
    paid = razorpay.capture(order)
    assert await gateway.status(order) == Captured(paid["id"], 50_000, "INR")
    request = RefundRequest(
        "rfnd_client_0001", "pmt_client_refund", order, paid["id"], 5_000, "INR"
    )
    razorpay.fail_next(1, status=409, path="/refund", method="POST")

    with pytest.raises(GatewayUnavailable):
        await gateway.refund(request)
    made = await gateway.refund(request)
    again = await gateway.refund(request)

    assert made == again
    assert made.status is RefundStatus.PENDING
    assert (await gateway.refund_status(made.gateway_refund_id)) == made
    keys = {r.headers["X-Refund-Idempotency"] for r in razorpay.requests_to("/refund", "POST")}
    assert "rfnd_client_0001" in keys
