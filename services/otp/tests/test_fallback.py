"""Twilio failing in each retryable way: the same code goes out through MSG91 and verifies."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from rtmn_shared.testing.waiting import wait_for

if TYPE_CHECKING:
    from conftest import Harness, Starter


async def assert_msg91_code_verifies(h: Harness, phone: str) -> str:
    code = h.msg91_code(phone)
    sent = h.msg91.sends_to(phone.lstrip("+"))[0]
    assert sent.flow_id == "otp-flow-1"
    assert sent.sender == "RTMNIN"
    response = await h.verify(phone, code)
    assert response.status == 200
    return code


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_twilio_error_status_falls_back_to_msg91(h: Harness, status: int) -> None:
    phone = h.new_phone()
    h.twilio.fail_next(1, status, path="/Messages.json")
    response = await h.send(phone)
    assert response.status == 202
    assert not h.twilio.messages_to(phone)
    await assert_msg91_code_verifies(h, phone)


async def test_twilio_timeout_falls_back_with_the_same_code(h: Harness) -> None:
    phone = h.new_phone()
    h.twilio.delay_next(1, 1.5, path="/Messages.json")  # the deadline is 0.5 s
    response = await h.send(phone)
    assert response.status == 202
    code = h.msg91_code(phone)
    # Twilio carries the late request out after all: the user then holds two copies of one code.
    await wait_for(lambda: h.twilio.messages_to(phone), timeout=5, message="the late Twilio SMS")
    assert h.twilio_code(phone) == code
    assert (await h.verify(phone, code)).status == 200


async def test_twilio_dropping_the_connection_falls_back(h: Harness) -> None:
    phone = h.new_phone()
    h.twilio.drop_next(1, path="/Messages.json")
    assert (await h.send(phone)).status == 202
    await assert_msg91_code_verifies(h, phone)


async def test_twilio_refusing_connections_falls_back(start_otp: Starter) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with start_otp(twilio_base_url=closed) as h:
        phone = h.new_phone()
        assert (await h.send(phone)).status == 202
        await assert_msg91_code_verifies(h, phone)


async def test_both_down_is_503_and_leaves_no_usable_code(h: Harness) -> None:
    phone = h.new_phone()
    h.twilio.fail_next(1, 500, path="/Messages.json")
    h.msg91.fail_next(1, 502, path="/flow/")
    response = await h.send(phone)
    assert response.status == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "Retry-After" in response.headers
    keys = h.keys_of(phone)
    assert await h.redis.exists(keys.code) == 0, "an undelivered code must not stay usable"
    # The cooldown went with it, so the user can ask again at once.
    assert (await h.send(phone)).status == 202
    assert (await h.verify(phone, h.twilio_code(phone))).status == 200


async def test_a_number_twilio_rejects_is_not_routed_around(h: Harness) -> None:
    phone = h.new_phone()
    h.twilio.reject_number(phone, 21610)  # the user texted STOP
    response = await h.send(phone)
    assert response.status == 422
    assert phone[3:] not in await response.text()
    assert not h.msg91.sent
    assert await h.redis.exists(h.keys_of(phone).code) == 0


async def test_msg91_refusing_the_send_means_503(start_otp: Starter) -> None:
    async with start_otp(msg91_flow_id="not-registered") as h:
        phone = h.new_phone()
        h.twilio.fail_next(1, 503, path="/Messages.json")
        assert (await h.send(phone)).status == 503
        assert not h.msg91.sent


async def test_redis_down_is_503_and_nothing_is_sent(start_otp: Starter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    async with start_otp(redis_url=closed) as h:
        phone = h.new_phone()
        response = await h.send(phone)
        assert response.status == 503
        assert phone[3:] not in await response.text()
        assert (await h.verify(phone, "123456")).status == 503
        assert not h.twilio.sent_messages
