"""SMS and WhatsApp: MSG91 first, Twilio when MSG91 is down, each channel of a request's plan its
own delivery row, push-then-SMS fallback, consent and a missing number recorded with the reason.
Real PostgreSQL and RabbitMQ; MSG91 and Twilio are the contract fakes, Twilio through its SDK."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from notify_testkit import (
    RETRY_DELAYS_MS,
    Publish,
    add_devices,
    consumed,
    in_daytime,
    live_settings,
    unique,
)

from notify.app import SERVICE
from notify.domain import PUSH_TEMPLATES
from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.msg91 import Msg91Fake
from rtmn_fakes.sendgrid import EventWebhookSigner, SendGridFake
from rtmn_fakes.twilio import TwilioFake
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import NotificationRequested, PaymentFailed, UserRegistered
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

# twilio 9.13's async client passes aiohttp.BasicAuth as `auth=`, both deprecated in aiohttp 3.14.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

FLOW_ID = "notify-text-flow"
SENDER_ID = "REZINF"
MSG91_WHATSAPP_NUMBER = "919800000001"
MSG91_TEMPLATE = "notify_text"
TWILIO_FROM = "+15005550006"
TWILIO_WHATSAPP_FROM = "+14155238886"
CONTENT_SID = "HX" + "1b" * 16
SEND = "/api/notify/send"
QUEUE = "notify.send-requested"
TEXT = "Order update: There is news about your order."


@pytest.fixture(scope="module")
async def msg91() -> AsyncIterator[Msg91Fake]:
    async with Msg91Fake() as fake:
        fake.register_flow(FLOW_ID, ["message"], sender=SENDER_ID)
        fake.register_whatsapp_number(MSG91_WHATSAPP_NUMBER)
        fake.register_whatsapp_template(MSG91_TEMPLATE, body_variables=1)
        yield fake


@pytest.fixture(scope="module")
async def twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake() as fake:
        fake.register_whatsapp_sender(TWILIO_WHATSAPP_FROM)
        fake.register_content(CONTENT_SID, ("1",))
        yield fake


@pytest.fixture(scope="module")
async def notify(
    suite: Suite,
    sendgrid: SendGridFake,
    fcm: FcmFake,
    signer: EventWebhookSigner,
    msg91: Msg91Fake,
    twilio: TwilioFake,
) -> AsyncIterator[RunningService]:
    settings = live_settings(
        sendgrid,
        fcm,
        signer,
        msg91_auth_key=msg91.authkey,
        msg91_base_url=msg91.url,
        msg91_sender_id=SENDER_ID,
        notify_msg91_flow_id=FLOW_ID,
        notify_msg91_whatsapp_number=MSG91_WHATSAPP_NUMBER,
        notify_msg91_whatsapp_template=MSG91_TEMPLATE,
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_phone_number=TWILIO_FROM,
        twilio_base_url=twilio.url,
        twilio_whatsapp_from=TWILIO_WHATSAPP_FROM,
        notify_twilio_whatsapp_content_sid=CONTENT_SID,
    )
    async with running(SERVICE, settings, retry_delays_ms=RETRY_DELAYS_MS) as svc:
        yield svc


def a_phone() -> str:
    return f"+9198{random.randrange(10**8):08d}"


async def user_with(
    publish: Publish, pool: Pool, phone: str | None, locale: str | None = None
) -> str:
    user_id = unique("user")
    await publish(UserRegistered(user_id=user_id, first_name="Asha", phone=phone, locale=locale))
    await wait_for(
        lambda: pool.fetchval("SELECT true FROM recipients WHERE user_id = $1", user_id),
        message="the recipient read model",
    )
    return user_id


def request(user_ids: list[str], channels: list[str], **extra: Any) -> NotificationRequested:
    return NotificationRequested.model_validate(
        {
            "request_id": unique("req"),
            "user_ids": user_ids,
            "title": "Order update",
            "message": "There is news about your order.",
            "data": {"type": "order"},
            "category": "transactional",
            "channels": channels,
            **extra,
        }
    )


async def rows(pool: Pool, user_id: str) -> dict[str, dict[str, Any]]:
    """The user's deliveries of requests, by channel (not the welcome email)."""
    found = await pool.fetch(
        "SELECT * FROM deliveries WHERE user_id = $1 AND template = 'request'", user_id
    )
    return {r["channel"]: dict(r) for r in found}


async def settled(pool: Pool, user_id: str, channel: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        row = (await rows(pool, user_id)).get(channel)
        return row if row and row["status"] != "queued" else None

    row: dict[str, Any] = await wait_for(done, message=f"{channel} of {user_id}")
    return row


def carries(digits: str) -> Any:
    return lambda r: digits in json.dumps(r.json)


async def test_an_sms_goes_through_msg91_once_however_often_the_request_comes(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, twilio: TwilioFake
) -> None:
    pool = notify.pool
    phone = a_phone()
    user = await user_with(publish, pool, phone)
    command = request([user], ["sms"])

    before = consumed(QUEUE)
    event = await publish(command)
    sms = await settled(pool, user, "sms")
    await publish(event=event)  # redelivered
    await publish(command)  # the same request under a new event id
    await wait_for(lambda: consumed(QUEUE) >= before + 3, message="all three copies consumed")

    [send] = msg91.sends_to(phone.lstrip("+"))
    assert (send.flow_id, send.sender, send.variables) == (FLOW_ID, SENDER_ID, {"message": TEXT})
    assert (sms["status"], sms["provider"], sms["provider_message_id"]) == (
        "sent",
        "msg91",
        send.request_id,
    )
    assert (sms["body"], sms["category"], sms["template"]) == (TEXT, "transactional", "request")
    assert twilio.messages_to(phone) == []
    assert set(await rows(pool, user)) == {"sms"}  # no push: the request asked for SMS only
    sent = await pool.fetchval(
        "SELECT payload->'data' FROM outbox WHERE type = 'notification.sent' "
        "AND payload->'data'->>'notification_id' = $1",
        str(sms["id"]),
    )
    assert json.loads(sent)["channel"] == "sms"
    assert json.loads(sent)["provider"] == "msg91"


async def test_when_msg91_is_down_twilio_sends_the_sms_and_no_log_line_shows_the_number(
    notify: RunningService,
    publish: Publish,
    msg91: Msg91Fake,
    twilio: TwilioFake,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = notify.pool
    phone = a_phone()
    user = await user_with(publish, pool, phone)
    msg91.fail_next(1, 503, path="/flow/", where=carries(phone.lstrip("+")))
    caplog.set_level(logging.DEBUG)

    await publish(request([user], ["sms"]))
    sms = await settled(pool, user, "sms")

    [message] = twilio.messages_to(phone)
    assert (message.body, message.from_) == (TEXT, TWILIO_FROM)
    assert (sms["status"], sms["provider"], sms["provider_message_id"]) == (
        "sent",
        "twilio",
        message.sid,
    )
    assert msg91.sends_to(phone.lstrip("+")) == []  # it answered 503: nothing went out there
    assert "sms provider unavailable: msg91 answered 503" in caplog.text  # logs were captured
    assert phone.lstrip("+") not in caplog.text
    assert phone[-8:] not in caplog.text


async def test_whatsapp_goes_through_msg91_and_through_twilio_when_msg91_is_down(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, twilio: TwilioFake
) -> None:
    pool = notify.pool
    first, second = a_phone(), a_phone()
    by_msg91 = await user_with(publish, pool, first)
    by_twilio = await user_with(publish, pool, second)
    msg91.fail_next(1, 500, path="/bulk/", where=carries(second.lstrip("+")))

    await publish(request([by_msg91, by_twilio], ["whatsapp"]))
    one = await settled(pool, by_msg91, "whatsapp")
    two = await settled(pool, by_twilio, "whatsapp")

    [sent] = msg91.whatsapp_to(first.lstrip("+"))
    assert (sent.integrated_number, sent.template, sent.components) == (
        MSG91_WHATSAPP_NUMBER,
        MSG91_TEMPLATE,
        {"body_1": TEXT},
    )
    assert (one["status"], one["provider"], one["provider_message_id"]) == (
        "sent",
        "msg91",
        sent.request_id,
    )
    [message] = twilio.messages_to(f"whatsapp:{second}")
    assert (message.from_, message.content_sid, message.content_variables) == (
        f"whatsapp:{TWILIO_WHATSAPP_FROM}",
        CONTENT_SID,
        {"1": TEXT},
    )
    assert (two["status"], two["provider"]) == ("sent", "twilio")
    assert msg91.whatsapp_to(second.lstrip("+")) == []
    assert twilio.messages_to(f"whatsapp:{first}") == []


async def test_push_falls_back_to_sms_only_for_a_user_with_no_live_device(
    notify: RunningService,
    publish: Publish,
    msg91: Msg91Fake,
    twilio: TwilioFake,
    fcm: FcmFake,
) -> None:
    pool = notify.pool
    with_device, without = a_phone(), a_phone()
    reachable = await user_with(publish, pool, with_device)
    unreachable = await user_with(publish, pool, without)
    token = unique("tok")
    await add_devices(pool, reachable, token)
    command = request([reachable, unreachable], ["push", "sms"], fallback=True)

    before = consumed(QUEUE)
    await publish(command)
    sms = await settled(pool, unreachable, "sms")
    push = await settled(pool, reachable, "push")
    await publish(command)  # again: every channel's outcome is found, nothing sent twice
    await wait_for(lambda: consumed(QUEUE) >= before + 2, message="both copies consumed")

    assert push["status"] == "sent"
    assert len(fcm.deliveries_to(token)) == 1
    assert set(await rows(pool, reachable)) == {"push"}  # one row per channel actually used
    assert msg91.sends_to(with_device.lstrip("+")) == []
    unreached = await rows(pool, unreachable)
    assert (unreached["push"]["status"], unreached["push"]["last_error"]) == (
        "skipped",
        "no active device",
    )
    assert (sms["status"], sms["provider"]) == ("sent", "msg91")
    assert len(msg91.sends_to(without.lstrip("+"))) == 1
    assert twilio.messages_to(without) == []


async def test_promotional_sms_is_opt_in_and_a_user_not_opted_in_is_suppressed_with_the_reason(
    notify: RunningService, suite: Suite, publish: Publish, msg91: Msg91Fake
) -> None:
    pool = notify.pool
    silent, opted = a_phone(), a_phone()
    not_in = await user_with(publish, pool, silent)
    opted_in = await user_with(publish, pool, opted)
    await in_daytime(pool, not_in, opted_in)
    yes = await notify.client.put(
        "/api/notify/preferences",
        json={"preferences": [{"category": "promotional", "channel": "sms", "enabled": True}]},
        headers=suite.bearer(opted_in),
    )
    assert yes.status == 200

    await publish(request([not_in, opted_in], ["sms"], category="promotional"))
    suppressed = await settled(pool, not_in, "sms")
    sent = await settled(pool, opted_in, "sms")

    assert (suppressed["status"], suppressed["last_error"], suppressed["attempts"]) == (
        "suppressed",
        "preference: promotional sms is off",
        0,
    )
    assert msg91.sends_to(silent.lstrip("+")) == []
    assert sent["status"] == "sent"
    assert len(msg91.sends_to(opted.lstrip("+"))) == 1


async def test_no_phone_number_or_one_that_is_not_a_number_is_skipped_with_the_reason(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, twilio: TwilioFake
) -> None:
    pool = notify.pool
    without = await user_with(publish, pool, None)
    garbled = await user_with(publish, pool, "call me maybe")
    before = (len(msg91.requests_to("/flow/")), len(twilio.sent_messages))

    await publish(request([without, garbled], ["sms"]))
    none = await settled(pool, without, "sms")
    bad = await settled(pool, garbled, "sms")

    assert (none["status"], none["last_error"]) == ("skipped", "no phone number on file")
    assert (bad["status"], bad["last_error"]) == ("skipped", "no usable phone number on file")
    assert (len(msg91.requests_to("/flow/")), len(twilio.sent_messages)) == before


async def test_send_asks_for_channels_and_fallback_and_refuses_an_unknown_channel(
    notify: RunningService, suite: Suite, publish: Publish, msg91: Msg91Fake
) -> None:
    pool = notify.pool
    phone = a_phone()
    user = await user_with(publish, pool, phone)
    service = suite.bearer("orders-service", "service")
    body = {
        "request_id": unique("req"),
        "user_ids": [user],
        "template": "order_update",
        "data": {"type": "order"},
        "category": "transactional",
        "channels": ["push", "sms"],
        "fallback": True,
    }

    fax = await notify.client.post(
        SEND, json={**body, "request_id": unique("req"), "channels": ["fax"]}, headers=service
    )
    accepted = await notify.client.post(SEND, json=body, headers=service)
    sms = await settled(pool, user, "sms")

    ready = await (await notify.client.get("/readyz")).json()
    assert (ready["providers"]["msg91"], ready["providers"]["twilio"]) == ("live", "live")
    assert fax.status == 422
    assert "channels" in await fax.text()
    assert accepted.status == 202
    title, message = PUSH_TEMPLATES["order_update"]  # the template's words, not the caller's
    assert (sms["status"], sms["body"]) == ("sent", f"{title}: {message}")
    [send] = msg91.sends_to(phone.lstrip("+"))
    assert send.variables == {"message": f"{title}: {message}"}


def test_an_old_request_without_channels_is_still_a_push_only() -> None:
    old = NotificationRequested.model_validate(
        {"request_id": "r-1", "user_ids": ["u-1"], "title": "t", "message": "m"}
    )
    assert (old.channels, old.fallback) == (["push"], False)


async def test_a_number_twilio_refuses_as_such_is_failed_and_never_retried(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, twilio: TwilioFake
) -> None:
    pool = notify.pool
    phone = a_phone()
    user = await user_with(publish, pool, phone)
    msg91.fail_next(1, 503, path="/flow/", where=carries(phone.lstrip("+")))
    twilio.reject_number(phone, 21614)  # not a mobile number

    await publish(request([user], ["sms"]))
    sms = await settled(pool, user, "sms")

    assert (sms["status"], sms["last_error"], sms["attempts"]) == (
        "failed",
        "twilio answered 400, code 21614",
        1,
    )
    assert len(twilio.requests_to("/Messages.json")) >= 1
    assert twilio.messages_to(phone) == []


async def test_a_failed_payment_reaches_a_user_with_no_device_by_sms_in_their_language_once(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, fcm: FcmFake
) -> None:
    pool = notify.pool
    phone, other_phone = a_phone(), a_phone()
    no_device = await user_with(publish, pool, phone, locale="hi-IN")
    with_device = await user_with(publish, pool, other_phone)
    token = unique("tok")
    await add_devices(pool, with_device, token)
    failures = [
        PaymentFailed(
            payment_id=unique("pay"),
            order_id=unique("ord"),
            user_id=user_id,
            amount=1_23_456_50,
            currency="INR",
            gateway="razorpay",
        )
        for user_id in (no_device, with_device)
    ]
    queue = "notify.push-payment-failed"
    before = consumed(queue)

    events = [await publish(failure) for failure in failures]
    await publish(event=events[0])  # redelivered: the push skipped, the SMS sent, nothing new
    await wait_for(lambda: consumed(queue) >= before + 3, message="the three events consumed")

    [send] = msg91.sends_to(phone.lstrip("+"))
    assert send.variables == {
        "message": "REZ: आपका ₹1,23,456.50 का भुगतान पूरा नहीं हुआ। कटी हुई राशि अपने-आप वापस आ जाएगी।"
    }
    statuses = await pool.fetch(
        "SELECT channel, status FROM deliveries WHERE source = $1 AND channel <> 'email' "
        "ORDER BY channel",
        f"payment:{failures[0].payment_id}",
    )
    assert [(r["channel"], r["status"]) for r in statuses] == [("push", "skipped"), ("sms", "sent")]
    # The user with a live device has the push, and no SMS.
    assert len(fcm.deliveries_to(token)) == 1
    assert msg91.sends_to(other_phone.lstrip("+")) == []


async def test_a_number_that_replied_stop_is_suppressed_and_the_plan_goes_on(
    notify: RunningService, publish: Publish, msg91: Msg91Fake, twilio: TwilioFake
) -> None:
    pool = notify.pool
    phone = a_phone()
    user = await user_with(publish, pool, phone)
    msg91.fail_next(1, 503, path="/flow/", where=carries(phone.lstrip("+")))
    twilio.reject_number(phone, 21610)  # the user replied STOP to our sender

    await publish(request([user], ["sms", "push"], fallback=True))
    sms = await settled(pool, user, "sms")
    push = await settled(pool, user, "push")

    assert (sms["status"], sms["attempts"]) == ("suppressed", 1)
    assert sms["last_error"] == "twilio answered 400, code 21610: the recipient replied STOP"
    assert push["status"] == "skipped"  # suppressed falls through to the next channel
    assert twilio.messages_to(phone) == []
