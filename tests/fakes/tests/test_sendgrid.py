"""The real sendgrid SDK against SendGridFake, and the signed Event Webhook side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from python_http_client.exceptions import (  # type: ignore[import-untyped]
    BadRequestsError,
    ForbiddenError,
    InternalServerError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import CustomArg, Header, Mail

from rtmn_fakes.payloads import load
from rtmn_fakes.sendgrid import (
    EventWebhookSigner,
    SendGridFake,
    build_events,
    verify_event_signature,
)
from rtmn_fakes.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER

API_KEY = "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
TEMPLATE = "d-" + "0123456789abcdef" * 2


@pytest.fixture
def fake() -> Iterator[SendGridFake]:
    with SendGridFake(API_KEY) as fake:
        yield fake


def client(fake: SendGridFake, key: str = API_KEY) -> SendGridAPIClient:
    sg = SendGridAPIClient(key, host=fake.url)
    sg.client.timeout = 5  # none by default, see PROVIDERS.md
    return sg


def template_mail(to: str = "asha@example.com") -> Mail:
    mail = Mail(from_email="orders@rtmn.example", to_emails=to)
    mail.template_id = TEMPLATE
    mail.dynamic_template_data = {"order_id": "ord-1", "total": "₹499"}
    mail.custom_arg = [CustomArg("event_id", "evt-123")]
    return mail


def test_dynamic_template_mail_is_accepted_with_a_message_id(fake: SendGridFake) -> None:
    response = client(fake).send(template_mail())

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    [mail] = fake.sent
    assert (mail.message_id, mail.template_id, mail.recipients) == (
        message_id,
        TEMPLATE,
        ["asha@example.com"],
    )
    assert mail.template_data("asha@example.com") == {"order_id": "ord-1", "total": "₹499"}
    assert mail.custom_args == {"event_id": "evt-123"}
    assert fake.wait_for_mail("asha@example.com") == mail


def test_one_click_unsubscribe_headers_set_through_the_sdk_are_recorded(
    fake: SendGridFake,
) -> None:
    mail = template_mail()
    # RFC 8058: both headers, the https URI in angle brackets.
    mail.header = [
        Header("List-Unsubscribe", "<https://api.rez.example/unsubscribe/t0k3n>"),
        Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]

    response = client(fake).send(mail)

    assert response.status_code == 202
    assert fake.sent[0].headers_for("asha@example.com") == {
        "List-Unsubscribe": "<https://api.rez.example/unsubscribe/t0k3n>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_the_published_openapi_request_is_accepted(fake: SendGridFake) -> None:
    body = load("sendgrid", "mail_send.request.dynamic_template.openapi.json")

    response = client(fake).client.mail.send.post(request_body=body)

    assert response.status_code == 202
    assert fake.sent[0].recipients == ["alex@example.com", "bola@example.com"]


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "asha@example.com"}]}],
        "from": {"email": "orders@rtmn.example"},
        "template_id": TEMPLATE,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body(personalizations=[]), "personalizations"),
        (_body(personalizations=[{"to": []}]), "personalizations.0.to"),
        (
            _body(personalizations=[{"to": [{"email": "not-an-address"}]}]),
            "personalizations.0.to.0.email",
        ),
        (_body(**{"from": None}), "from.email"),
        (_body(**{"from": {"email": "example@.sendgrid.net"}}), "from.email"),  # the docs' own typo
        (_body(template_id="[template_id]"), "template_id"),
        (_body(template_id=None), "subject"),
        (_body(template_id=None, subject="Hi"), "content"),
        (_body(custom_args={"attempt": 2}), "custom_args"),
        (_body(headers={"Subject": "Hi"}), "headers"),
        (
            _body(personalizations=[{"to": [{"email": "a@b.example"}], "headers": {"X-N": 1}}]),
            "personalizations.0.headers",
        ),
    ],
)
def test_invalid_mail_is_a_400_naming_the_field(
    fake: SendGridFake, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequestsError) as caught:
        client(fake).client.mail.send.post(request_body=body)

    [error] = caught.value.to_dict["errors"]
    assert error["field"] == field
    assert fake.sent == []


def test_wrong_key_forbidden_key_and_oversized_mail_use_published_bodies(
    fake: SendGridFake,
) -> None:
    with pytest.raises(UnauthorizedError) as unauthorized:
        client(fake, key="SG.wrong.key").send(template_mail())
    fake.forbidden = True
    with pytest.raises(ForbiddenError) as forbidden:
        client(fake).send(template_mail())
    fake.forbidden = False
    huge = _body(content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024)}])
    with pytest.raises(PayloadTooLargeError) as too_large:
        client(fake).client.mail.send.post(request_body=huge)

    assert unauthorized.value.to_dict == load("sendgrid", "mail_send.error_401.json")
    assert forbidden.value.to_dict == load("sendgrid", "mail_send.error_403.json")
    assert too_large.value.to_dict == load("sendgrid", "mail_send.error_413.json")
    assert fake.sent == []


def test_armed_500_uses_the_published_body(fake: SendGridFake) -> None:
    fake.fail_next(1, status=500)

    with pytest.raises(InternalServerError) as caught:
        client(fake).send(template_mail())

    assert caught.value.to_dict == load("sendgrid", "mail_send.error_500.json")


def test_signature_check_accepts_the_published_vector_and_rejects_its_negatives() -> None:
    vector = load("sendgrid", "signed_event_webhook.test_vector.json")
    body, key = vector["raw_body"].encode(), vector["public_key_b64_der"]
    signature = vector["header_X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = vector["header_X-Twilio-Email-Event-Webhook-Timestamp"]
    negative = vector["negative_cases"]

    assert verify_event_signature(key, body, signature, timestamp)
    assert not verify_event_signature(negative["wrong_public_key"], body, signature, timestamp)
    assert not verify_event_signature(key, body, negative["wrong_signature"], timestamp)
    assert not verify_event_signature(key, negative["bad_payload"].encode(), signature, timestamp)
    assert not verify_event_signature(key, body, signature, negative["bad_timestamp"])


def test_sdk_verifies_what_our_signer_signs() -> None:
    signer = EventWebhookSigner()
    body = build_events(
        "delivered", "open", email="asha@example.com", custom_args={"event_id": "evt-1"}
    )
    headers = signer.headers(body, "1700000000")

    verifier = EventWebhook(signer.public_key)
    assert verifier.verify_signature(
        body.decode(), headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    )
    assert not verifier.verify_signature(
        body.decode().strip(), headers[SIGNATURE_HEADER], "1700000000"
    )
    assert not EventWebhook(EventWebhookSigner().public_key).verify_signature(
        body.decode(), headers[SIGNATURE_HEADER], "1700000000"
    )
    delivered, opened = json.loads(body)
    assert (delivered["event"], opened["event"]) == ("delivered", "open")
    assert delivered["event_id"] == "evt-1"
    assert delivered["sg_event_id"] != opened["sg_event_id"]


def test_events_for_a_sent_mail_carry_its_message_id_and_custom_args(fake: SendGridFake) -> None:
    message_id = client(fake).send(template_mail("ravi@example.com")).headers["X-Message-Id"]

    events = json.loads(fake.build_events_for(message_id, "processed", "delivered"))

    assert [e["event"] for e in events] == ["processed", "delivered"]
    assert {e["email"] for e in events} == {"ravi@example.com"}
    assert all(e["sg_message_id"].startswith(f"{message_id}.") for e in events)
    assert all(e["event_id"] == "evt-123" for e in events)
    bounce = json.loads(build_events("bounce", "blocked"))
    assert [(e["event"], e["type"]) for e in bounce] == [
        ("bounce", "bounce"),
        ("bounce", "blocked"),
    ]
