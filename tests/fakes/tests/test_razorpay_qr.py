"""The real razorpay SDK's `qrcode` resource against RazorpayFake's QR Codes API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import razorpay
from razorpay.errors import BadRequestError, ServerError

from rtmn_fakes.payloads import load
from rtmn_fakes.razorpay import RazorpayFake, sign_webhook

TIMEOUT = 5


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[RazorpayFake]:
    with RazorpayFake(key_id="rzp_test_k1", key_secret="s3cret", clock=clock) as fake:
        yield fake


@pytest.fixture
def client(fake: RazorpayFake) -> razorpay.Client:
    return razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.url)


def qr_request(clock: Clock, **changes: Any) -> dict[str, Any]:
    body = {
        "type": "upi_qr",
        "name": "RTMN Stores",
        "usage": "single_use",
        "fixed_amount": True,
        "payment_amount": 50_000,
        "close_by": int(clock.now) + 900,
        "notes": {"payment_id": "pmt_1"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def create(client: razorpay.Client, body: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = client.qrcode.create(body, timeout=TIMEOUT)
    return made


def test_a_single_use_code_is_made_with_the_published_shape(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    code = create(client, qr_request(clock))

    published = load("razorpay", "api.qr_code_create.response.json")
    assert set(published) | {"closed_at", "close_reason"} == set(code)
    assert str(code["id"]).startswith("qr_")
    assert (code["status"], code["usage"], code["fixed_amount"]) == ("active", "single_use", True)
    assert (code["payment_amount"], code["close_by"]) == (50_000, int(clock.now) + 900)
    assert "image_content" not in code  # an on-demand feature of the account
    assert client.qrcode.fetch(code["id"], timeout=TIMEOUT) == code


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": None}, "type field is required"),
        ({"type": "bharat_qr_x"}, "selected type is invalid"),
        ({"usage": None}, "usage field is required"),
        ({"fixed_amount": False}, "fixed_amount must be true"),
        ({"payment_amount": None}, "payment amount field is required"),
        ({"payment_amount": 0}, "at least 1"),
        ({"payment_amount": "500"}, "must be an integer"),
        ({"close_by": 60}, "must be between 946684800 and 4765046400"),
        ({"close_by": "soon"}, "must be between"),
        ({"currency": "INR"}, "currency is/are not required"),
        ({"notes": {"k": "v" * 257}}, "256 characters"),
    ],
)
def test_what_razorpay_refuses_is_refused(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock, changes: Any, message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        create(client, qr_request(clock, **changes))

    assert fake.qr.codes == {}


def test_close_by_must_be_two_minutes_ahead_and_is_held_to_two_hours(
    client: razorpay.Client, clock: Clock
) -> None:
    now = int(clock.now)
    with pytest.raises(BadRequestError, match="at least 2 minutes"):
        create(client, qr_request(clock, close_by=now + 119))
    with pytest.raises(BadRequestError, match="multiple_use"):
        create(client, qr_request(clock, usage="multiple_use"))

    far = create(client, qr_request(clock, close_by=now + 86_400))
    unset = create(client, qr_request(clock, close_by=None))

    assert far["close_by"] == unset["close_by"] == now + 7_200


def test_wrong_key_is_refused(fake: RazorpayFake, clock: Clock) -> None:
    client = razorpay.Client(auth=(fake.key_id, "wrong"), base_url=fake.url)

    with pytest.raises(BadRequestError, match="Authentication failed"):
        create(client, qr_request(clock))

    assert fake.qr.codes == {}


def test_a_paid_single_use_code_closes_and_lists_its_captured_payment(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    code = create(client, qr_request(clock))

    with pytest.raises(ValueError, match="takes 50000 only"):
        fake.pay_qr_code(code["id"], 49_900)
    paid = fake.pay_qr_code(code["id"])

    listed = client.qrcode.fetch_all_payments(code["id"], timeout=TIMEOUT)
    assert [p["id"] for p in listed["items"]] == [paid["id"]]
    assert (paid["status"], paid["amount"], paid["order_id"]) == ("captured", 50_000, None)
    now = client.qrcode.fetch(code["id"], timeout=TIMEOUT)
    assert (now["status"], now["close_reason"], now["payments_count_received"]) == (
        "closed",
        "paid",
        1,
    )
    with pytest.raises(ValueError, match="closed"):
        fake.pay_qr_code(code["id"])


def test_a_code_closes_on_demand_once_and_at_its_close_by(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    closed = create(client, qr_request(clock))
    expiring = create(client, qr_request(clock, close_by=int(clock.now) + 300))

    first = client.qrcode.close(closed["id"], timeout=TIMEOUT)
    with pytest.raises(BadRequestError, match="already closed"):
        client.qrcode.close(closed["id"], timeout=TIMEOUT)
    clock.now += 300

    assert (first["status"], first["close_reason"]) == ("closed", "on_demand")
    assert client.qrcode.fetch(expiring["id"], timeout=TIMEOUT)["status"] == "closed"
    with pytest.raises(ValueError, match="closed"):
        fake.pay_qr_code(expiring["id"])
    with pytest.raises(BadRequestError, match="does not exist"):
        client.qrcode.close("qr_unknown", timeout=TIMEOUT)


def test_codes_are_listed_newest_first_from_a_time(client: razorpay.Client, clock: Clock) -> None:
    old = create(client, qr_request(clock))
    clock.now += 10
    new = create(client, qr_request(clock))

    everything = client.qrcode.all({"count": 100}, timeout=TIMEOUT)
    recent = client.qrcode.all({"from": int(clock.now)}, timeout=TIMEOUT)

    assert [c["id"] for c in everything["items"]] == [new["id"], old["id"]]
    assert [c["id"] for c in recent["items"]] == [new["id"]]
    with pytest.raises(BadRequestError, match="count"):
        client.qrcode.all({"count": 101}, timeout=TIMEOUT)


def test_the_credited_webhook_names_the_code_and_its_payment(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    code = create(client, qr_request(clock))
    paid = fake.pay_qr_code(code["id"])

    body = fake.build_webhook("qr_code.credited", payment_id=paid["id"])

    envelope = json.loads(body)
    assert envelope["contains"] == ["payment", "qr_code"]
    assert envelope["payload"]["payment"]["entity"]["id"] == paid["id"]
    assert envelope["payload"]["qr_code"]["entity"]["id"] == code["id"]
    assert razorpay.Client(auth=("k", "s")).utility.verify_webhook_signature(
        body.decode(), sign_webhook(body, "whsec"), "whsec"
    )


def test_an_image_content_account_gets_the_upi_link(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    fake.qr.image_content = True

    code = create(client, qr_request(clock, payment_amount=123_405))

    link = code["image_content"]
    assert link.startswith("upi://pay?pa=")
    assert f"tr=RZP{code['id'].removeprefix('qr_')}qrv2" in link
    assert "am=1234.05" in link


def test_failures_can_be_injected(
    fake: RazorpayFake, client: razorpay.Client, clock: Clock
) -> None:
    fake.fail_next(1, status=503, path="/v1/payments/qr_codes", method="POST")

    with pytest.raises(ServerError):
        create(client, qr_request(clock))

    assert fake.qr.codes == {}
    assert create(client, qr_request(clock))["status"] == "active"
