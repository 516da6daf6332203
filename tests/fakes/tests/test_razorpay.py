"""The real razorpay SDK against RazorpayFake, plus the webhook and checkout signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError, SignatureVerificationError

from rtmn_fakes.payloads import load
from rtmn_fakes.razorpay import (
    RazorpayFake,
    build_webhook,
    checkout_signature,
    sign_webhook,
    webhook_headers,
)

TIMEOUT = 5


@pytest.fixture
def fake() -> Iterator[RazorpayFake]:
    with RazorpayFake(key_id="rzp_test_k1", key_secret="s3cret") as fake:
        yield fake


@pytest.fixture
def client(fake: RazorpayFake) -> razorpay.Client:
    return razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.url)


def create_order(client: razorpay.Client, amount: int = 50_000) -> dict[str, object]:
    order = {"amount": amount, "currency": "INR", "receipt": "rcpt-1", "notes": {"k": "v"}}
    result: dict[str, object] = client.order.create(order, timeout=TIMEOUT)
    return result


def test_order_is_created_with_the_published_shape(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    order = create_order(client)

    published = load("razorpay", "api.order_create.response.json")
    assert set(order) == set(published)
    assert str(order["id"]).startswith("order_")
    assert (order["status"], order["amount_due"], order["amount_paid"]) == ("created", 50_000, 0)
    assert client.order.fetch(order["id"], timeout=TIMEOUT) == order
    [sent] = fake.requests_to("/v1/orders", "POST")
    assert sent.json == {
        "amount": 50_000,
        "currency": "INR",
        "receipt": "rcpt-1",
        "notes": {"k": "v"},
    }


def test_wrong_secret_is_rejected(fake: RazorpayFake) -> None:
    client = razorpay.Client(auth=(fake.key_id, "wrong"), base_url=fake.url)

    with pytest.raises(BadRequestError, match="Authentication failed"):
        create_order(client)

    assert fake.requests[0].status == 401
    assert fake.orders == {}


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ({"amount": 99, "currency": "INR"}, "at least INR 1.00"),
        ({"amount": "500", "currency": "INR"}, "must be an integer"),
        ({"amount": 500.5, "currency": "INR"}, "must be an integer"),
        ({"currency": "INR"}, "amount field is required"),
        ({"amount": 500}, "currency field is required"),
        ({"amount": 500, "currency": "XYZ"}, "Currency is not supported"),
        ({"amount": 500, "currency": "INR", "receipt": "r" * 41}, "40 characters"),
        ({"amount": 500, "currency": "INR", "colour": "red"}, "colour is/are not required"),
    ],
)
def test_invalid_orders_get_razorpays_bad_request_error(
    client: razorpay.Client, fake: RazorpayFake, order: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        client.order.create(order, timeout=TIMEOUT)

    assert fake.orders == {}


def test_error_body_has_razorpays_shape(fake: RazorpayFake) -> None:
    response = requests.post(
        f"{fake.url}/v1/orders",
        json={"amount": 10, "currency": "INR"},
        auth=(fake.key_id, fake.key_secret),
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    published = load("razorpay", "api.order_create.error_400.json")
    assert response.json() == published  # the fixture is exactly this validation failure


def test_captured_payment_is_listed_under_its_order(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    order = create_order(client, 20_000)

    payment = fake.capture(str(order["id"]), method="card")

    assert client.payment.fetch(payment["id"], timeout=TIMEOUT)["status"] == "captured"
    listed = client.order.payments(order["id"], timeout=TIMEOUT)
    assert (listed["entity"], listed["count"]) == ("collection", 1)
    assert listed["items"][0]["id"] == payment["id"]
    assert listed["items"][0]["method"] == "card"
    fetched = client.order.fetch(order["id"], timeout=TIMEOUT)
    assert (fetched["status"], fetched["amount_paid"], fetched["amount_due"]) == ("paid", 20_000, 0)
    with pytest.raises(ValueError, match="already paid"):
        fake.capture(str(order["id"]))


def test_orders_are_found_by_receipt_newest_first(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    def made(receipt: str) -> str:
        order = {"amount": 50_000, "currency": "INR", "receipt": receipt}
        return str(client.order.create(order, timeout=TIMEOUT)["id"])

    first, _, second = made("pmt_a"), made("pmt_b"), made("pmt_a")

    listed = client.order.all({"receipt": "pmt_a"}, timeout=TIMEOUT)

    assert (listed["entity"], listed["count"]) == ("collection", 2)
    assert [o["id"] for o in listed["items"]] == [second, first]
    assert listed["items"][1] == client.order.fetch(first, timeout=TIMEOUT)
    assert client.order.all({"receipt": "pmt_none"}, timeout=TIMEOUT)["items"] == []
    [sent] = fake.requests_to("/v1/orders", "GET")[-1:]
    assert sent.query == {"receipt": "pmt_none"}


def test_orders_are_paged_and_filtered_by_time_and_authorisation() -> None:
    now = [1_700_000_000.0]
    with RazorpayFake(key_id="rzp_test_k1", key_secret="s3cret", clock=lambda: now[0]) as fake:
        client = razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.url)
        ids = []
        for _ in range(3):
            ids.append(create_order(client)["id"])
            now[0] += 60
        fake.authorize(str(ids[0]))

        def listed(**query: object) -> list[object]:
            return [o["id"] for o in client.order.all(query, timeout=TIMEOUT)["items"]]

        assert listed() == ids[::-1]
        assert listed(count=1, skip=1) == [ids[1]]
        assert listed(**{"from": 1_700_000_060}) == [ids[2], ids[1]]
        assert listed(to=1_700_000_060) == [ids[1], ids[0]]
        assert listed(authorized=1) == [ids[0]]
        assert listed(authorized=0) == [ids[2], ids[1]]
        [expanded] = client.order.all({"expand[]": "payments", "authorized": 1}, timeout=TIMEOUT)[
            "items"
        ]
        assert expanded["payments"]["count"] == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"count": 101}, "between 1 and 100"),
        ({"count": "ten"}, "count must be an integer"),
        ({"status": "paid"}, "status is/are not required"),
    ],
)
def test_bad_order_queries_are_rejected(
    client: razorpay.Client, query: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        client.order.all(query, timeout=TIMEOUT)


def test_unknown_payment_is_a_bad_request(client: razorpay.Client) -> None:
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        client.payment.fetch("pay_doesnotexist00", timeout=TIMEOUT)


def test_refund_with_idempotency_key_is_made_once(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    payment = fake.capture(str(create_order(client, 10_000)["id"]))
    headers = {"X-Refund-Idempotency": "refund-0001-abc"}

    first = client.payment.refund(payment["id"], {"amount": 4_000}, headers=headers, timeout=5)
    again = client.payment.refund(payment["id"], {"amount": 4_000}, headers=headers, timeout=5)

    assert first == again
    assert (first["status"], first["amount"]) == ("pending", 4_000)
    assert len(fake.refunds) == 1
    assert client.payment.fetch(payment["id"], timeout=TIMEOUT)["amount_refunded"] == 4_000


def test_same_idempotency_key_with_another_body_is_rejected(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    payment = fake.capture(str(create_order(client, 10_000)["id"]))
    headers = {"X-Refund-Idempotency": "refund-0002-abc"}
    client.payment.refund(payment["id"], {"amount": 1_000}, headers=headers, timeout=TIMEOUT)

    with pytest.raises(BadRequestError, match="same idempotency key"):
        client.payment.refund(payment["id"], {"amount": 2_000}, headers=headers, timeout=TIMEOUT)
    with pytest.raises(BadRequestError, match="at least 10 characters"):
        client.payment.refund(payment["id"], {}, headers={"X-Refund-Idempotency": "short"})

    assert len(fake.refunds) == 1


def test_refunds_stop_at_the_captured_amount(fake: RazorpayFake, client: razorpay.Client) -> None:
    payment = fake.capture(str(create_order(client, 10_000)["id"]))
    client.payment.refund(payment["id"], {"amount": 3_000}, timeout=TIMEOUT)

    with pytest.raises(BadRequestError, match="greater than the amount left"):
        client.payment.refund(payment["id"], {"amount": 7_001}, timeout=TIMEOUT)
    rest = client.payment.refund(payment["id"], {}, timeout=TIMEOUT)
    with pytest.raises(BadRequestError, match="fully refunded"):
        client.payment.refund(payment["id"], {"amount": 100}, timeout=TIMEOUT)

    assert rest["amount"] == 7_000
    fetched = client.payment.fetch(payment["id"], timeout=TIMEOUT)
    assert (fetched["status"], fetched["refund_status"]) == ("refunded", "full")


def test_uncaptured_payment_cannot_be_refunded(fake: RazorpayFake, client: razorpay.Client) -> None:
    payment = fake.authorize(str(create_order(client)["id"]))

    with pytest.raises(BadRequestError, match="Only captured payments"):
        client.payment.refund(payment["id"], {}, timeout=TIMEOUT)


def test_only_an_authorized_payment_is_captured_for_its_whole_amount_and_currency(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    payment = fake.authorize(str(create_order(client)["id"]))

    with pytest.raises(BadRequestError, match="equal to the amount authorized"):
        client.payment.capture(payment["id"], 20_000, {"currency": "INR"}, timeout=TIMEOUT)
    with pytest.raises(BadRequestError, match="same as the payment currency"):
        client.payment.capture(payment["id"], 50_000, {"currency": "USD"}, timeout=TIMEOUT)
    captured = client.payment.capture(payment["id"], 50_000, {"currency": "INR"}, timeout=TIMEOUT)
    with pytest.raises(BadRequestError, match="already been captured"):
        client.payment.capture(payment["id"], 50_000, {"currency": "INR"}, timeout=TIMEOUT)
    failed = fake.fail_payment(str(create_order(client)["id"]))
    with pytest.raises(BadRequestError, match="Only payments which have been authorized"):
        client.payment.capture(failed["id"], 50_000, {"currency": "INR"}, timeout=TIMEOUT)

    assert (captured["status"], captured["captured"]) == ("captured", True)
    assert fake.orders[payment["order_id"]]["status"] == "paid"
    fake.fail_next(1, 503, path="/capture")
    with pytest.raises(ServerError):
        client.payment.capture(payment["id"], 50_000, {"currency": "INR"}, timeout=TIMEOUT)


def test_refund_status_is_settable_and_a_failed_refund_frees_the_amount(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    payment = fake.capture(str(create_order(client, 10_000)["id"]))
    done = client.payment.refund(payment["id"], {"amount": 2_000}, timeout=TIMEOUT)
    lost = client.payment.refund(payment["id"], {"amount": 8_000}, timeout=TIMEOUT)

    fake.set_refund_status(done["id"], "processed")
    fake.set_refund_status(lost["id"], "failed")

    assert client.refund.fetch(done["id"], timeout=TIMEOUT)["status"] == "processed"
    assert client.refund.fetch(lost["id"], timeout=TIMEOUT)["status"] == "failed"
    assert client.payment.fetch(payment["id"], timeout=TIMEOUT)["amount_refunded"] == 2_000


def test_armed_failures_reach_the_sdk(
    fake: RazorpayFake, client: razorpay.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail_next(1, status=503, path="/v1/orders")
    with pytest.raises(ServerError):
        create_order(client)

    fake.drop_next(1, after_handling=True)
    with pytest.raises(requests.ConnectionError):
        create_order(client)
    assert len(fake.orders) == 1  # created, though the client never heard of it
    assert "Connection failed." in capsys.readouterr().out  # the SDK prints, see PROVIDERS.md

    fake.delay_next(1, 1.0)
    with pytest.raises(requests.Timeout):
        client.order.create({"amount": 500, "currency": "INR"}, timeout=0.2)

    fake.malformed_next(1)
    with pytest.raises(requests.JSONDecodeError):
        create_order(client)


def test_webhook_signature_matches_razorpays_published_vector() -> None:
    vector = load("razorpay", "signature_vectors.json")["webhook"]
    body = vector["raw_body"].encode()

    assert sign_webhook(body, vector["secret"]) == vector["x_razorpay_signature"]


def test_sdk_verifies_our_webhooks_and_rejects_tampering(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    order = create_order(client)
    payment = fake.capture(str(order["id"]))
    body = fake.build_webhook("order.paid", payment_id=payment["id"])
    headers = webhook_headers(body, "whsec-razorpay")

    event = json.loads(body)
    assert event["event"] == "order.paid"
    assert event["payload"]["payment"]["entity"]["id"] == payment["id"]
    assert event["payload"]["order"]["entity"]["status"] == "paid"
    signature = headers["X-Razorpay-Signature"]
    assert client.utility.verify_webhook_signature(body.decode(), signature, "whsec-razorpay")
    # Re-serialising the body changes its bytes, so the signature no longer matches.
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(json.dumps(event), signature, "whsec-razorpay")


@pytest.mark.parametrize(
    "event",
    [
        "payment.captured",
        "payment.authorized",
        "payment.failed",
        "refund.processed",
        "refund.failed",
    ],
)
def test_every_webhook_is_built_from_its_published_sample(event: str) -> None:
    entity = {"id": "pay_given", "entity": "payment", "amount": 700}

    built = json.loads(build_webhook(event, payment=entity, created_at=1_700_000_000))

    assert built["event"] == event
    assert built["payload"]["payment"]["entity"] == entity
    assert built["created_at"] == 1_700_000_000
    if event.startswith("refund."):
        assert built["payload"]["refund"]["entity"]["status"] == event.split(".")[1]


DISPUTE_EVENTS = ["created", "won", "lost", "closed", "under_review", "action_required"]


@pytest.mark.parametrize("state", DISPUTE_EVENTS)
def test_every_dispute_webhook_is_built_from_its_published_sample(state: str) -> None:
    published = load("razorpay", f"webhook.payment.dispute.{state}.json")
    dispute = {"id": "disp_given", "entity": "dispute", "payment_id": "pay_given"}

    built = json.loads(build_webhook(f"payment.dispute.{state}", dispute=dispute))

    assert built["event"] == f"payment.dispute.{state}"
    assert built["contains"] == ["payment", "dispute"]
    assert built["payload"]["dispute"]["entity"] == dispute
    assert built["payload"]["payment"] == published["payload"]["payment"]


def test_a_dispute_is_raised_fetched_and_settled_with_its_webhooks(
    fake: RazorpayFake, client: razorpay.Client
) -> None:
    order = create_order(client, 20_000)
    payment = fake.capture(str(order["id"]), method="card")

    opened = fake.open_dispute(payment["id"], amount=5_000)
    lost = fake.set_dispute_status(opened["id"], "lost")

    fetched = client.dispute.fetch(opened["id"], timeout=TIMEOUT)
    assert (fetched["payment_id"], fetched["amount"], fetched["currency"]) == (
        payment["id"],
        5_000,
        "INR",
    )
    assert (fetched["status"], fetched["amount_deducted"]) == ("lost", 5_000)
    assert opened["respond_by"] > opened["created_at"]
    published = load("razorpay", "webhook.payment.dispute.created.json")["payload"]["dispute"]
    assert set(opened) == set(published["entity"])
    body = fake.build_webhook("payment.dispute.lost", dispute_id=opened["id"])
    event = json.loads(body)
    assert event["payload"]["dispute"]["entity"] == lost
    assert event["payload"]["payment"]["entity"]["order_id"] == order["id"]
    signature = webhook_headers(body, "whsec-razorpay")["X-Razorpay-Signature"]
    assert client.utility.verify_webhook_signature(body.decode(), signature, "whsec-razorpay")


def test_only_a_captured_payment_is_disputed(fake: RazorpayFake, client: razorpay.Client) -> None:
    payment = fake.authorize(str(create_order(client)["id"]))

    with pytest.raises(ValueError, match="not captured"):
        fake.open_dispute(payment["id"])


def test_checkout_signature_matches_published_vector_and_sdk() -> None:
    vector = load("razorpay", "signature_vectors.json")["checkout_payment"]
    order_id, payment_id = vector["razorpay_order_id"], vector["razorpay_payment_id"]

    signature = checkout_signature(order_id, payment_id, vector["secret"])

    assert signature == vector["razorpay_signature"]
    client = razorpay.Client(auth=("key_id", vector["secret"]))
    params = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": signature,
    }
    assert client.utility.verify_payment_signature(params)
