"""Fallback on silence: a signed receipt saying the code never arrived hands the same code to the
next provider or channel, once, while it is live, and without spending anyone's caps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import ClientResponse

if TYPE_CHECKING:
    from conftest import Harness, Starter

PUBLIC = "https://otp.example.test"
REPORT_KEY = "msg91-report-key-" + "r" * 24
TWILIO_RECEIPTS = "/api/otp/receipts/twilio"
MSG91_RECEIPTS = f"/api/otp/receipts/msg91?key={REPORT_KEY}"


@asynccontextmanager
async def receipts_on(start_otp: Starter, **overrides: object) -> AsyncIterator[Harness]:
    async with start_otp(otp_public_url=PUBLIC, otp_msg91_report_key=REPORT_KEY, **overrides) as h:
        yield h


async def twilio_reports(h: Harness, sid: str, status: str, **extra: str) -> ClientResponse:
    url, params, headers = h.twilio.status_callback(sid, status, error_code=30003)
    assert url == PUBLIC + TWILIO_RECEIPTS, "Twilio was given our public callback URL"
    return await h.client.post(TWILIO_RECEIPTS, data={**params, **extra}, headers=headers)


async def test_an_undelivered_sms_is_resent_by_msg91_with_the_same_code(
    start_otp: Starter,
) -> None:
    async with receipts_on(start_otp) as h:
        phone, ip = h.new_phone(), h.new_ip()
        assert (await h.send(phone, ip=ip)).status == 202
        [sms] = h.twilio.messages_to(phone)
        code = h.twilio_code(phone)

        assert (await twilio_reports(h, sms.sid, "undelivered")).status == 204

        assert h.msg91_code(phone) == code, "the same code, not a new one"
        keys = h.keys_of(phone, ip=ip)
        assert await h.redis.get(keys.hourly) == b"1", "the resend spent none of the caller's caps"
        assert (await h.verify(phone, code)).status == 200


async def test_a_repeated_failure_receipt_resends_once(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        await h.send(phone)
        [sms] = h.twilio.messages_to(phone)
        for _ in range(3):  # Twilio retries callbacks, and reports failed after undelivered
            assert (await twilio_reports(h, sms.sid, "undelivered")).status == 204
        assert len(h.msg91.sends_to(phone.lstrip("+"))) == 1


async def test_a_forged_receipt_is_refused_and_resends_nothing(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        await h.send(phone)
        [sms] = h.twilio.messages_to(phone)
        _, params, headers = h.twilio.status_callback(sms.sid, "delivered")
        forged = {**params, "MessageStatus": "undelivered"}  # signed as delivered
        answer = await h.client.post(TWILIO_RECEIPTS, data=forged, headers=headers)
        assert answer.status == 403
        assert answer.content_type == "application/problem+json"
        unsigned = await h.client.post(TWILIO_RECEIPTS, data=forged)
        assert unsigned.status == 403
        assert h.msg91.sent == []
        assert phone[3:] not in await answer.text()
        # The genuine receipt still works afterwards: nothing was consumed by the forgeries.
        assert (await twilio_reports(h, sms.sid, "undelivered")).status == 204
        assert len(h.msg91.sends_to(phone.lstrip("+"))) == 1


async def test_a_delivered_code_is_not_resent_by_a_later_failure(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        await h.send(phone)
        [sms] = h.twilio.messages_to(phone)
        assert (await twilio_reports(h, sms.sid, "sent")).status == 204
        assert (await twilio_reports(h, sms.sid, "delivered")).status == 204
        assert (await twilio_reports(h, sms.sid, "undelivered")).status == 204
        assert h.msg91.sent == []


async def test_a_used_code_is_not_resent(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        await h.send(phone)
        [sms] = h.twilio.messages_to(phone)
        assert (await h.verify(phone, h.twilio_code(phone))).status == 200
        assert (await twilio_reports(h, sms.sid, "failed")).status == 204
        assert h.msg91.sent == []


async def test_msg91_reporting_a_failure_hands_the_code_to_whatsapp(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        h.twilio.fail_next(1, 503, path="/Messages.json")  # Twilio down: MSG91 takes the SMS
        assert (await h.send(phone)).status == 202
        code = h.msg91_code(phone)
        [send] = h.msg91.sends_to(phone.lstrip("+"))

        bad_key = MSG91_RECEIPTS.replace(REPORT_KEY, "x" * 40)
        report = h.msg91.delivery_report(send.request_id, "2")
        assert (await h.client.post(bad_key, data=report)).status == 403
        assert h.twilio.messages_to(f"whatsapp:{phone}") == []

        assert (await h.client.post(MSG91_RECEIPTS, data=report)).status == 204
        assert h.whatsapp_code(phone) == code
        assert (await h.verify(phone, code)).status == 200


async def test_a_failed_whatsapp_message_falls_back_to_a_voice_call(start_otp: Starter) -> None:
    async with receipts_on(start_otp) as h:
        phone = h.new_phone()
        assert (await h.send(phone, channel="whatsapp")).status == 202
        code = h.whatsapp_code(phone)
        [message] = h.twilio.messages_to(f"whatsapp:{phone}")
        assert (await twilio_reports(h, message.sid, "failed")).status == 204
        assert h.voice_code(phone) == code
        [call] = h.twilio.calls_to(phone)
        _, params, headers = h.twilio.call_status_callback(call.sid, "no-answer")
        answer = await h.client.post(TWILIO_RECEIPTS, data=params, headers=headers)
        assert answer.status == 204  # voice is the last step: nothing further
        assert len(h.twilio.calls_to(phone)) == 1


async def test_a_malformed_msg91_report_is_a_problem_and_changes_nothing(
    start_otp: Starter,
) -> None:
    async with receipts_on(start_otp) as h:
        for data in ({"data": "not json"}, {"data": '[{"report": []}]'}, {"data": "{}"}, {}):
            answer = await h.client.post(MSG91_RECEIPTS, data=data)
            assert answer.status == 400
            assert answer.content_type == "application/problem+json"


async def test_without_a_public_url_receipts_are_not_taken(h: Harness) -> None:
    for path in (TWILIO_RECEIPTS, MSG91_RECEIPTS):
        answer = await h.client.post(path, data={"MessageSid": "SM1"})
        assert answer.status == 404
        assert answer.content_type == "application/problem+json"
