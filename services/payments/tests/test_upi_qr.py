"""UPI through Razorpay's QR codes: one per payment, confirmed by `qr_code.credited` (or
reconciliation on the code's payments), and refused with a 503 while its settings are missing."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest
from payments_testkit import Api

from payments.app import build_app, build_gateways
from payments.domain import Captured
from payments.providers.razorpay.webhooks import parse as parse_razorpay
from payments.reconcile import Reconciler
from payments.webhooks import Ignored, PaymentCommand
from rtmn_fakes.payloads import load_text
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.testing.plugin import ClientFactory
from rtmn_shared.testing.waiting import wait_for

QR_CODES = "/v1/payments/qr_codes"
SLOW = 2.0  # seconds the fake takes, past the service's 1 s gateway timeout


def codes_of(razorpay: RazorpayFake, payment_id: str) -> list[str]:
    """The ids of the QR codes made for our payment (its id is in their notes)."""
    codes = list(razorpay.qr.codes.values())
    return [c["id"] for c in codes if c["notes"].get("payment_id") == payment_id]


def test_the_published_credited_sample_captures_the_code_it_names() -> None:
    body = load_text("razorpay", "webhook.qr_code.credited.json").encode()
    closed = load_text("razorpay", "webhook.qr_code.closed.json").encode()

    event, created, command = parse_razorpay(body)

    paid_at = datetime.fromtimestamp(1623914419, UTC)
    assert (event, created) == ("qr_code.credited", paid_at)
    assert command == PaymentCommand(
        "qr_HO2e0813YlchUn", Captured("pay_HO2fEpc9JeOQU5", 200, "INR", paid_at)
    )
    assert parse_razorpay(closed)[2] == Ignored("qr_code.closed")


async def test_a_upi_create_opens_one_single_use_fixed_amount_qr_code(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    before = int(time.time())
    created = await api.created(user, gateway="upi", amount=123_405)
    after = int(time.time())

    [qr_id] = codes_of(razorpay, created["payment_id"])
    [sent] = [
        r.json
        for r in razorpay.requests_to(QR_CODES, "POST")
        if r.json["notes"]["payment_id"] == created["payment_id"]
    ]
    assert created["gateway_order_id"] == qr_id
    assert (sent["type"], sent["usage"], sent["fixed_amount"]) == ("upi_qr", "single_use", True)
    assert (sent["payment_amount"], sent["name"]) == (123_405, "RTMN Stores")
    assert before + 900 <= sent["close_by"] <= after + 900
    upi = created["upi"]
    code = razorpay.qr.codes[qr_id]
    assert (upi["qr_code_id"], upi["image_url"], upi["status"]) == (
        qr_id,
        code["image_url"],
        "active",
    )
    assert datetime.fromisoformat(upi["close_by"]).timestamp() == code["close_by"]
    # Without Razorpay's image content there is no link, and nothing of ours to pay.
    assert (upi["link"], upi["qr_svg"], upi["qr_png"]) == (None, None, None)
    assert created["checkout"] == {"qr_code_id": qr_id, "image_url": code["image_url"]}


async def test_a_credited_qr_code_is_captured_once_and_its_payment_captured_is_ignored(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user, gateway="upi")
    paid = razorpay.pay_qr_code(created["gateway_order_id"])
    credited = razorpay.build_webhook("qr_code.credited", payment_id=paid["id"])
    # Razorpay also sends payment.captured for it, without an order: nothing of ours to settle.
    captured = razorpay.build_webhook("payment.captured", payment_id=paid["id"])

    first = await api.razorpay_webhook(credited)
    again = await api.razorpay_webhook(credited)
    other = await api.razorpay_webhook(captured)

    assert (first.status, again.status, other.status) == (200, 200, 200)
    assert (await again.json())["status"] == "duplicate"
    view = await api.get(created["payment_id"])
    assert (view["status"], view["gateway_payment_id"]) == ("captured", paid["id"])
    [event] = await api.events(created["payment_id"], "payment.success")
    assert (event["gateway"], event["amount"]) == ("upi", 50_000)


async def test_a_paid_code_shows_closed_and_unlinked_codes_draw_no_qr(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created = await api.created(user, gateway="upi")
    razorpay.pay_qr_code(created["gateway_order_id"])
    headers = api.suite.bearer(user)
    path = f"/api/payments/{created['payment_id']}/upi"

    shown = await api.client.get(path, headers=headers)
    svg = await api.client.get(path + "?format=svg", headers=headers)

    assert shown.status == 200
    assert (await shown.json())["status"] == "closed"
    assert svg.status == 404
    assert svg.content_type == "application/problem+json"


async def test_a_card_payment_has_no_upi_qr_code(api: Api, user: str) -> None:
    created = await api.created(user)

    response = await api.client.get(
        f"/api/payments/{created['payment_id']}/upi", headers=api.suite.bearer(user)
    )

    assert response.status == 422


async def test_a_lost_qr_create_is_found_by_reconciliation_never_made_twice(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    razorpay.delay_next(1, SLOW, path=QR_CODES, method="POST")

    response = await api.create(user, gateway="upi")

    assert response.status == 503
    payment_id = (await response.json())["payment_id"]
    [qr_id] = await wait_for(lambda: codes_of(razorpay, payment_id), message="the late code")
    paid = razorpay.pay_qr_code(qr_id)
    gateways = await build_gateways(api.settings(), stack)
    job = Reconciler(UnitOfWork(api.pool, lambda: None), gateways, after_seconds=0, batch=1_000)

    await job.run_once(datetime.now(UTC) + timedelta(days=2))

    view = await api.get(payment_id)
    assert (view["status"], view["gateway_order_id"]) == ("captured", qr_id)
    assert view["gateway_payment_id"] == paid["id"]
    assert codes_of(razorpay, payment_id) == [qr_id]  # found in the list, not made again
    assert razorpay.requests_to(QR_CODES, "GET")[-1].query["from"].isdigit()
    assert razorpay.requests_to(f"{QR_CODES}/{qr_id}/payments", "GET")
    assert len(await api.events(payment_id, "payment.success")) == 1


async def test_a_retry_with_the_key_resumes_on_the_code_the_lost_try_made(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    key = f"upi-{uuid.uuid4().hex}"
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    await api.place_order(user, order_id)
    razorpay.fail_next(1, status=500, path=QR_CODES, method="POST")
    razorpay.delay_next(1, SLOW, path=QR_CODES, method="POST")

    failed = await api.pay(user, order_id, gateway="upi", key=key)
    lost = await api.pay(user, order_id, gateway="upi", key=key)
    payment_id = (await lost.json())["payment_id"]
    [qr_id] = await wait_for(lambda: codes_of(razorpay, payment_id), message="the late code")
    resumed = await api.pay(user, order_id, gateway="upi", key=key)

    assert (failed.status, lost.status, resumed.status) == (503, 503, 201)
    assert (await failed.json())["payment_id"] == payment_id
    body = await resumed.json()
    assert (body["payment_id"], body["gateway_order_id"]) == (payment_id, qr_id)
    assert body["upi"]["qr_code_id"] == qr_id
    assert codes_of(razorpay, payment_id) == [qr_id]


async def test_the_provider_closes_a_code_once(
    api: Api, razorpay: RazorpayFake, stack: AsyncExitStack, user: str
) -> None:
    created = await api.created(user, gateway="upi")
    upi = (await build_gateways(api.settings(), stack)).upi()

    await upi.close(created["gateway_order_id"])
    await upi.close(created["gateway_order_id"])  # closed already: no error, no second close

    code = razorpay.qr.codes[created["gateway_order_id"]]
    assert (code["status"], code["close_reason"]) == ("closed", "on_demand")
    closes = razorpay.requests_to(f"{QR_CODES}/{created['gateway_order_id']}/close", "POST")
    assert len(closes) == 1
    with pytest.raises(ValueError, match="closed"):
        razorpay.pay_qr_code(created["gateway_order_id"])


@pytest.mark.parametrize("missing", ["upi_payee_name", "razorpay_webhook_secret"])
async def test_upi_without_its_settings_is_503_changes_nothing_and_readyz_says_so(
    api: Api, razorpay: RazorpayFake, http: ClientFactory, user: str, missing: str
) -> None:
    earlier = await api.created(user, gateway="upi")
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    await api.place_order(user, order_id)
    made = len(razorpay.requests_to(QR_CODES, "POST"))
    async with AsyncExitStack() as stack:
        client = await http(await build_app(api.settings(**{missing: None}), stack))
        headers = api.suite.bearer(user)

        ready = await (await client.get("/readyz")).json()
        refused = await client.post(
            "/api/payments/create", json={"order_id": order_id, "gateway": "upi"}, headers=headers
        )
        shown = await client.get(f"/api/payments/{earlier['payment_id']}/upi", headers=headers)
        card = await client.post(
            "/api/payments/create",
            json={"order_id": order_id, "gateway": "razorpay"},
            headers=headers,
        )

    name = missing.upper()
    assert ready["providers"]["upi"] == f"not configured: {name} not set"
    assert ready["providers"]["razorpay"] == "live"
    assert (refused.status, refused.content_type) == (503, "application/problem+json")
    assert name in (await refused.json())["detail"]
    assert shown.status == 503
    assert card.status == 201  # the order was left as it was: nothing stored for the refusal
    assert len(razorpay.requests_to(QR_CODES, "POST")) == made
