"""No OTP and no full phone number in any log line, metric label or error body."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Harness, Starter

# Log records of the contract fakes are the provider's side of the wire, not ours.
NOT_OURS = ("rtmn_fakes",)


def record_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        if record.name.startswith(NOT_OURS):
            continue
        texts.append(record.getMessage())
        texts.extend(str(v) for k, v in vars(record).items() if k not in ("msg", "args"))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def assert_absent(texts: list[str], phone: str, codes: list[str]) -> None:
    national = phone[3:]
    for text in texts:
        assert national not in text, f"phone digits in: {text[:200]}"
        for code in codes:
            assert code not in text, f"the code in: {text[:200]}"


async def test_send_and_verify_log_neither_code_nor_phone(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    phone = h.new_phone()
    assert (await h.send(phone)).status == 202
    code = h.twilio_code(phone)
    wrong = await h.verify(phone, h.wrong(code))
    assert (await h.verify(phone, code)).status == 200
    # A failover and a failed send log too: their lines are checked as well.
    other = h.new_phone()
    h.twilio.fail_next(1, 500, path="/Messages.json")
    assert (await h.send(other)).status == 202
    other_code = h.msg91_code(other)
    rejected = h.new_phone()
    h.twilio.reject_number(rejected, 21211)
    refused = await h.send(rejected)
    assert refused.status == 422

    texts = record_texts(caplog)
    assert any("otp sent" in t for t in texts), "the capture saw the service's own lines"
    assert any("otp verified" in t for t in texts)
    assert any("unavailable" in t for t in texts)
    assert_absent(texts, phone, [code, h.wrong(code)])
    assert_absent(texts, other, [other_code])
    assert_absent(texts, rejected, [])
    assert_absent([await wrong.text(), await refused.text()], phone, [code])
    assert_absent([await refused.text()], rejected, [])

    metrics = await (await h.client.get("/metrics")).text()
    assert 'rtmn_otp_sends_total{outcome="sent",provider="twilio"}' in metrics
    assert 'rtmn_otp_sends_total{outcome="sent",provider="msg91"}' in metrics
    assert_absent([metrics], phone, [code])
    assert_absent([metrics], other, [other_code])


async def test_the_sandbox_sends_nothing_and_logs_no_code(
    start_otp: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_otp(live=False) as h:
        ready = await (await h.client.get("/readyz")).json()
        assert ready["providers"] == {"sms": "sandbox"}
        phone = h.new_phone()
        assert (await h.send(phone)).status == 202
        assert not h.twilio.sent_messages
        assert not h.msg91.sent
    texts = record_texts(caplog)
    assert any("sandbox" in t for t in texts)
    assert_absent(texts, phone, [])
    # No code was exposed anywhere; its stored digest is all there is.
    assert await h.redis.exists(h.keys_of(phone).code) == 1


async def test_codes_no_provider_took_are_counted_from_zero_for_each_live_provider(
    h: Harness,
) -> None:
    """So that the alert's increase() sees the first one (a series born at 1 never grows)."""
    metrics = await (await h.client.get("/metrics")).text()
    for provider in ("twilio", "msg91"):
        assert f'rtmn_otp_sends_total{{outcome="unavailable",provider="{provider}"}}' in metrics


async def test_readiness_names_the_live_providers(h: Harness) -> None:
    ready = await (await h.client.get("/readyz")).json()
    assert ready["providers"] == {"twilio": "live", "msg91": "live"}
    assert ready["checks"]["redis"] == "ok"
    spec = await (await h.client.get("/openapi.json")).json()
    assert {"/api/otp/send", "/api/otp/verify", "/api/otp/.well-known/jwks.json"} <= set(
        spec["paths"]
    )


async def test_channels_receipts_and_the_pumping_block_log_neither_code_nor_phone(
    start_otp: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {"otp_public_url": "https://otp.example.test", "otp_pumping_floor": 0.5,
                "otp_pumping_min_sends": 3}  # fmt: skip
    async with start_otp(**settings) as h:
        phone = h.new_phone()
        assert (await h.send(phone, channel="whatsapp")).status == 202
        code = h.whatsapp_code(phone)
        [message] = h.twilio.messages_to(f"whatsapp:{phone}")
        _, params, headers = h.twilio.status_callback(message.sid, "undelivered", 63016)
        await h.client.post("/api/otp/receipts/twilio", data=params, headers=headers)
        assert h.voice_code(phone) == code
        forged = await h.client.post("/api/otp/receipts/twilio", data=params)
        assert forged.status == 403
        victims = [f"+917016{n:06d}" for n in range(4)]
        for victim in victims:
            await h.send(victim)
        refused = await h.send(victims[-1])
        assert refused.status == 429
        bodies = [await forged.text(), await refused.text()]
    texts = record_texts(caplog)
    assert any("resent after a failed delivery" in t for t in texts)
    assert any("prefix blocked" in t for t in texts)
    assert_absent(texts + bodies, phone, [code])
    for victim in victims:
        assert_absent(texts + bodies, victim, [])
