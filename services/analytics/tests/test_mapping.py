"""The allow-list: what each domain event becomes, and what never leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.domain import to_json
from analytics.mapping import MAPPINGS, map_event
from rtmn_shared.events.catalogue import (
    CATALOGUE,
    MediaUploaded,
    NotificationFailed,
    NotificationRequested,
    OtpVerified,
    PaymentFailed,
    PaymentRefunded,
    PaymentSuccess,
    UserRegistered,
)
from rtmn_shared.events.envelope import CloudEvent, EventData


def wrap(data: EventData) -> CloudEvent:
    return CloudEvent.of(data, source="rtmn/test")


def test_a_payment_keeps_its_identity_time_and_money_in_minor_units() -> None:
    paid = PaymentSuccess(
        payment_id="pay_1",
        order_id="ord_1",
        order_number="R1",
        user_id="u1",
        merchant_id="m1",
        amount=49_950,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id="pay_rzp_1",
        paid_at=datetime.now(UTC),
    )
    event = wrap(paid)
    mapped = map_event(event, paid)
    assert mapped is not None
    assert mapped.insert_id == str(event.id)
    assert mapped.time == event.time
    assert mapped.user_id == "u1"
    assert mapped.name == "payment_success"
    assert mapped.properties["amount"] == 49_950
    assert mapped.properties["currency"] == "INR"
    assert mapped.properties["revenue"] == Decimal("499.50")
    assert "gateway_payment_id" not in mapped.properties
    # The display amount leaves as the exact decimal number, never through a float.
    assert b'"revenue":499.50' in to_json(dict(mapped.properties))


def test_zero_decimal_currencies_and_zero_amounts_read_plainly() -> None:
    failed = PaymentFailed(
        payment_id="p", order_id="o", user_id="u", amount=0, currency="JPY", gateway="stripe"
    )
    mapped = map_event(wrap(failed), failed)
    assert mapped is not None
    assert str(mapped.properties["revenue"]) == "0"


def test_a_registration_sends_no_email_phone_or_name() -> None:
    user = UserRegistered(
        user_id="u1", email="a@example.com", phone="+919876543210", first_name="A", tier="gold"
    )
    mapped = map_event(wrap(user), user)
    assert mapped is not None
    assert mapped.properties == {"source": "rtmn/test", "tier": "gold"}


def test_an_otp_verification_belongs_to_no_user_and_keeps_its_phone_hash_home() -> None:
    otp = OtpVerified(phone_hash="ab" * 32, purpose="login")
    mapped = map_event(wrap(otp), otp)
    assert mapped is not None
    assert mapped.user_id is None
    assert "ab" * 32 not in to_json(dict(mapped.properties)).decode()


def test_free_text_and_urls_stay_home() -> None:
    media = MediaUploaded(
        media_id="m1", owner_id="u1", folder="products", urls={"x": "https://cdn/x?sig=abc"}
    )
    failure = NotificationFailed(
        notification_id="n1",
        event_id="e1",
        channel="email",
        user_id="u1",
        provider="sendgrid",
        reason="bounced: a@example.com",
    )
    for data in (media, failure):
        mapped = map_event(wrap(data), data)
        assert mapped is not None
        text = to_json(dict(mapped.properties)).decode()
        assert "sig=" not in text
        assert "@" not in text


def test_a_command_is_not_forwarded() -> None:
    command = NotificationRequested(request_id="r", user_ids=["u"], title="t", message="m")
    assert map_event(wrap(command), command) is None


@pytest.mark.parametrize("event_type", list(MAPPINGS))
def test_every_allow_listed_field_exists_on_its_event(event_type: str) -> None:
    mapping = MAPPINGS[event_type]
    names = set(CATALOGUE[event_type].model_fields)
    assert set(mapping.fields) <= names
    assert mapping.user is None or mapping.user in names
    forbidden = {"email", "phone", "phone_hash", "first_name", "urls", "error_description"}
    assert not forbidden & set(mapping.fields)


def test_a_refund_carries_this_refund_as_revenue() -> None:
    refund = PaymentRefunded(
        refund_id="r1",
        payment_id="p1",
        order_id="o1",
        user_id="u1",
        amount=10_000,
        refunded_total=10_000,
        currency="INR",
        full=False,
    )
    mapped = map_event(CloudEvent.of(refund, source="s", event_id=uuid.uuid4()), refund)
    assert mapped is not None
    assert mapped.properties["revenue"] == Decimal("100.00")
    assert mapped.properties["full"] is False
