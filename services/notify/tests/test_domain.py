"""Pure rules: message contents, status order, and what each FCM error means for a token."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import get_args

import pytest

from notify import domain, templates
from notify.domain import PUSH_TEMPLATES, Links, PushSummary, PushTemplate, Recipient
from notify.providers import TokenResult
from notify.providers.fcm import classify
from rtmn_fakes.payloads import load
from rtmn_shared.events.catalogue import NotificationRequested, PaymentSuccess

LINKS = Links(app_url="https://rez.test/", deep_link_base="rezapp://")
TEXTS = templates.load()


def paid(amount: int = 49_900, currency: str = "INR") -> PaymentSuccess:
    return PaymentSuccess(
        payment_id="pay_1",
        order_id="ord_1",
        order_number="R1001",
        user_id="u1",
        merchant_id="m1",
        amount=amount,
        currency=currency,
        gateway="razorpay",
        gateway_payment_id="pay_rzp_1",
        paid_at=datetime(2026, 1, 3, 23, 59, tzinfo=UTC),
    )


def test_order_confirmation_formats_paise_and_falls_back_to_a_neutral_greeting() -> None:
    data = domain.order_confirmation_data(paid(123_456_78), Recipient("u1", None, "  "), LINKS)

    assert data == {
        "first_name": "there",
        "order_number": "R1001",
        "order_date": "03 Jan 2026",
        "total": "₹123,456.78",
        "tracking_url": "https://rez.test/orders/ord_1/track",
    }
    assert (
        domain.order_confirmation_data(paid(500, "JPY"), Recipient("u1", None, "Ken"), LINKS)[
            "total"
        ]
        == "JPY 500"
    )


def test_every_push_data_value_is_a_string() -> None:
    push = domain.payment_push(paid(), LINKS, TEXTS, "en-IN")

    assert push.title == "Payment Successful"
    assert push.body == "Your payment of ₹499.00 for order #R1001 was successful."
    assert push.data["deepLink"] == "rezapp://orders/ord_1"
    assert all(isinstance(v, str) for v in push.data.values())


def test_a_request_keeps_its_data_and_image() -> None:
    command = NotificationRequested(
        request_id="r1",
        user_ids=["u1"],
        title="Sale",
        message="Now",
        image="https://cdn.rez.test/a.png",
        data={"type": "promotion", "deepLink": "rezapp://sale", "action": "open"},
    )

    push = domain.requested_push(command)

    assert (push.image, dict(push.data)) == (
        "https://cdn.rez.test/a.png",
        {"type": "promotion", "deepLink": "rezapp://sale", "action": "open"},
    )


def test_email_statuses_only_move_forward() -> None:
    assert domain.statuses_before("sent") == ["queued"]
    assert domain.statuses_before("delivered") == ["queued", "sent"]
    assert set(domain.statuses_before("bounced")) == {"queued", "sent", "delivered"}
    assert "bounced" not in domain.statuses_before("dropped")
    assert "delivered" not in domain.statuses_before("delivered")


def test_batches_split_without_losing_anyone() -> None:
    assert domain.batches(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_a_push_is_final_only_when_no_token_waits_for_a_retry() -> None:
    sent, dead = TokenResult("t1", "sent", "m1"), TokenResult("t2", "dead", error="gone")
    busy = TokenResult("t3", "retry", error="UnavailableError")

    assert PushSummary.of([sent, dead, busy]).final_status(sent_before=0) is None
    assert PushSummary.of([sent, dead]).final_status(sent_before=0) == "sent"
    assert PushSummary.of([dead]).final_status(sent_before=0) == "failed"
    assert PushSummary.of([dead]).final_status(sent_before=1) == "sent"
    assert PushSummary.of([sent, dead, busy]).reason() == "UnavailableError; gone"


def fcm_answer(fixture: str, **error: object) -> bytes:
    """A published FCM error body, its top level changed where FCM's differs from the sample."""
    body = load("fcm", fixture)
    body["error"].update(error)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (404, fcm_answer("error.unregistered_404.thirdparty_observed.json"), "dead"),
        (404, fcm_answer("error.unregistered.sdk_test.json"), "dead"),
        (403, fcm_answer("error.sender_id_mismatch.sdk_test.json"), "dead"),
        (400, fcm_answer("error.400.invalid_argument.invalid_token.docs.json"), "dead"),
        (400, fcm_answer("error.400.invalid_argument.bad_request_field.docs.json"), "failed"),
        (
            429,
            fcm_answer("error.quota_exceeded.sdk_test.json", status="RESOURCE_EXHAUSTED"),
            "retry",
        ),
        (503, fcm_answer("error.unavailable_503.thirdparty_observed.json"), "retry"),
        (500, fcm_answer("error.internal_500.thirdparty_observed.json"), "retry"),
        (401, fcm_answer("error.third_party_auth_error.sdk_test.json"), "failed"),
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "retry"),
    ],
)
def test_fcm_errors_deactivate_only_dead_tokens(status: int, body: bytes, outcome: str) -> None:
    assert classify(status, body)[0] == outcome


def test_an_invalid_argument_naming_message_token_in_its_details_is_a_dead_token() -> None:
    observed = load("fcm", "error.invalid_token_400.thirdparty_observed.json")
    observed["error"]["message"] = "Request contains an invalid argument."  # says nothing itself

    assert classify(400, json.dumps(observed).encode()) == (
        "dead",
        "INVALID_ARGUMENT (400): Request contains an invalid argument.",
    )


def test_every_push_template_name_has_words_and_only_those_do() -> None:
    assert set(PUSH_TEMPLATES) == set(get_args(PushTemplate))
    assert all(title and text for title, text in PUSH_TEMPLATES.values())
