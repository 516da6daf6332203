"""SMS, WhatsApp and voice: one live code per phone and purpose whatever carried it, and one
cooldown and one set of caps for all channels together.

Time is not waited out: a test deletes the key a wait would have expired ("as if it passed")."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Harness, Starter


async def test_a_voice_call_reads_the_code_twice_in_indian_english(h: Harness) -> None:
    phone = h.new_phone()
    assert (await h.send(phone, channel="voice")).status == 202
    [call] = h.twilio.calls_to(phone)
    assert len(call.spoken()) == 2
    assert call.say_languages() == {"en-IN"}
    assert h.twilio.messages_to(phone) == []
    assert (await h.verify(phone, h.voice_code(phone))).status == 200


async def test_whatsapp_carries_the_code_in_the_approved_template(h: Harness) -> None:
    phone = h.new_phone()
    assert (await h.send(phone, channel="whatsapp")).status == 202
    [message] = h.twilio.messages_to(f"whatsapp:{phone}")
    assert message.body == ""
    assert message.from_ == "whatsapp:+14155238886"
    assert h.twilio.messages_to(phone) == []
    assert (await h.verify(phone, h.whatsapp_code(phone))).status == 200


async def test_the_cooldown_counts_every_channel(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    assert (await h.send(phone, ip=ip)).status == 202
    for channel in ("voice", "whatsapp", "sms"):
        answer = await h.send(phone, ip=ip, channel=channel)
        assert answer.status == 429
        assert "Retry-After" in answer.headers
    assert h.twilio.calls_to(phone) == []
    assert h.twilio.messages_to(f"whatsapp:{phone}") == []
    assert len(h.twilio.messages_to(phone)) == 1


async def test_a_resend_may_switch_channel_and_only_the_newest_code_is_live(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    keys = h.keys_of(phone, ip=ip)
    assert (await h.send(phone, ip=ip)).status == 202
    sms_code = h.twilio_code(phone)
    await h.redis.delete(keys.cooldown, keys.gap)  # as if 30 s had passed
    assert (await h.send(phone, ip=ip, channel="voice")).status == 202
    voice_code = h.voice_code(phone)
    if voice_code != sms_code:  # one in a million they coincide
        assert (await h.verify(phone, sms_code)).status == 400
    assert (await h.verify(phone, voice_code)).status == 200


async def test_the_hourly_cap_counts_every_channel(start_otp: Starter) -> None:
    async with start_otp(otp_hourly_cap=2) as h:
        phone, ip = h.new_phone(), h.new_ip()
        keys = h.keys_of(phone, ip=ip)
        for channel in ("sms", "voice"):
            assert (await h.send(phone, ip=ip, channel=channel)).status == 202
            await h.redis.delete(keys.cooldown, keys.gap)
        refused = await h.send(phone, ip=ip, channel="whatsapp")
        assert refused.status == 429
        assert h.twilio.messages_to(f"whatsapp:{phone}") == []


async def test_a_channel_no_provider_offers_is_refused_and_counts_nothing(
    start_otp: Starter,
) -> None:
    async with start_otp(twilio_account_sid=None, twilio_auth_token=None) as h:  # MSG91 only
        phone, ip = h.new_phone(), h.new_ip()
        for channel in ("whatsapp", "voice"):
            answer = await h.send(phone, ip=ip, channel=channel)
            assert answer.status == 422
            assert (await answer.json())["errors"][0]["field"] == "channel"
        assert await h.redis.exists(h.keys_of(phone, ip=ip).cooldown) == 0
        assert (await h.send(phone, ip=ip)).status == 202
        assert h.msg91_code(phone)


async def test_an_unknown_channel_is_a_validation_problem(h: Harness) -> None:
    answer = await h.send(h.new_phone(), channel="pigeon")
    assert answer.status == 422
    assert answer.content_type == "application/problem+json"


async def test_a_voice_call_twilio_cannot_place_withdraws_the_code(h: Harness) -> None:
    phone = h.new_phone()
    h.twilio.fail_next(1, 503, path="/Calls.json")
    answer = await h.send(phone, channel="voice")
    assert answer.status == 503  # no other provider places calls
    assert h.msg91.sent == [], "a voice request is not turned into an SMS behind the user's back"
    assert await h.redis.exists(h.keys_of(phone).code) == 0
