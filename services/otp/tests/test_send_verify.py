"""Send and verify through HTTP, with the real Twilio SDK talking to its contract fake."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import jwt

from rtmn_shared.testing.waiting import wait_for

if TYPE_CHECKING:
    from conftest import Harness


def mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


async def test_send_stores_only_an_hmac_of_the_code(h: Harness) -> None:
    phone = h.new_phone()
    response = await h.send(phone)
    assert response.status == 202
    assert await response.json() == {"expires_in": 300, "retry_after": 30}
    code = h.twilio_code(phone)
    assert h.twilio.messages_to(phone)[0].from_ == "+15005550006"
    assert not h.msg91.sent

    keys = h.keys_of(phone)
    assert (await h.redis.get(keys.code)).decode() == mac(h.hash_key, f"code|login|{phone}|{code}")
    assert 299_000 < await h.redis.pttl(keys.code) <= 300_000
    names = [k.decode() async for k in h.redis.scan_iter(match="otp:*")]
    assert keys.code in names
    assert not [n for n in names if phone[3:] in n], "a key name carries the phone number"


async def test_the_answer_is_the_same_for_any_number(h: Harness) -> None:
    first, second = await h.send(h.new_phone()), await h.send("98" + "7" * 8)
    assert first.status == second.status == 202
    assert await first.read() == await second.read()


async def test_right_code_returns_a_token_and_records_the_event(h: Harness) -> None:
    phone = h.new_phone()
    assert (await h.send(phone)).status == 202
    code = h.twilio_code(phone)

    response = await h.verify(phone, code)
    assert response.status == 200
    answer = await response.json()
    claims = jwt.decode(answer["token"], h.public_key, algorithms=["EdDSA"])
    assert claims["sub"] == claims["phone"] == phone
    assert claims["purpose"] == answer["purpose"] == "login"
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 600
    assert len(claims["jti"]) == 32

    phone_hash = mac(h.hash_key, f"phone|{phone}")
    pool = h.svc.pool
    payload = await pool.fetchval(
        "SELECT payload FROM outbox WHERE type = 'otp.verified' AND subject = $1", phone_hash
    )
    assert payload is not None
    assert json.loads(payload)["data"] == {"phone_hash": phone_hash, "purpose": "login"}
    assert phone[3:] not in payload
    # The relay published it: the row is marked sent only once the broker confirmed it.
    await wait_for(
        lambda: pool.fetchval(
            "SELECT sent_at IS NOT NULL FROM outbox WHERE subject = $1", phone_hash
        ),
        message="otp.verified published",
    )

    again = await h.verify(phone, code)
    assert again.status == 400, "a code is single use"


async def test_twenty_concurrent_sends_send_one_sms(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    responses = await asyncio.gather(*(h.send(phone, ip=ip) for _ in range(20)))
    assert sorted(r.status for r in responses) == [202] + [429] * 19
    assert all(0 < int(r.headers["Retry-After"]) <= 30 for r in responses if r.status == 429)
    assert len(h.twilio.messages_to(phone)) == 1
    assert not h.msg91.sent


async def test_twenty_concurrent_sends_from_twenty_clients_send_one_sms(h: Harness) -> None:
    phone = h.new_phone()
    responses = await asyncio.gather(*(h.send(phone) for _ in range(20)))
    # Each is told what a sender is told, so none learns that another asked a moment ago.
    assert {r.status for r in responses} == {202}
    assert len({await r.read() for r in responses}) == 1
    assert len(h.twilio.messages_to(phone)) == 1
    assert not h.msg91.sent


async def test_fifty_concurrent_wrong_codes_spend_only_their_clients_three(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    assert (await h.send(phone, ip=ip)).status == 202
    code = h.twilio_code(phone)

    guesses = (h.verify(phone, h.wrong(code), ip=ip) for _ in range(50))
    responses = await asyncio.gather(*guesses)
    assert all(r.status == 400 for r in responses)
    lefts = sorted([(await r.json())["attempts_left"] for r in responses], reverse=True)
    assert lefts[:3] == [2, 1, 0]
    assert set(lefts[3:]) == {0}
    keys = h.keys_of(phone, ip=ip)
    assert int(await h.redis.get(keys.wrong)) == 3, "only three guesses reached the code"
    assert (await h.verify(phone, code, ip=ip)).status == 400

    # That client gets no fresh code (and so no fresh attempts) until its attempts expire.
    await h.redis.delete(keys.cooldown, keys.gap)
    locked = await h.send(phone, ip=ip)
    assert locked.status == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 300
    assert len(h.twilio.messages_to(phone)) == 1
    # Its guesses were its own: from another address the code still works.
    assert (await h.verify(phone, code, ip=h.new_ip())).status == 200


async def test_a_resend_does_not_reset_the_attempt_budget(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    keys = h.keys_of(phone, ip=ip)
    assert (await h.send(phone, ip=ip)).status == 202
    first = h.twilio_code(phone)
    for _ in range(2):
        assert (await h.verify(phone, h.wrong(first), ip=ip)).status == 400

    assert (await h.send(phone, ip=ip)).status == 429, "the 30 s cooldown holds"
    await h.redis.delete(keys.cooldown, keys.gap)  # as if 30 s had passed
    h.twilio.reset()
    assert (await h.send(phone, ip=ip)).status == 202
    second = h.twilio_code(phone)

    last = await h.verify(phone, h.wrong(second), ip=ip)
    assert (last.status, (await last.json())["attempts_left"]) == (400, 0)
    assert (await h.verify(phone, second, ip=ip)).status == 400


async def test_an_expired_code_fails(h: Harness) -> None:
    phone = h.new_phone()
    assert (await h.send(phone)).status == 202
    code = h.twilio_code(phone)
    keys = h.keys_of(phone)
    assert await h.redis.pexpire(keys.code, 1)
    await wait_for(lambda: _gone(h, keys.code), message="the code to expire")
    assert (await h.verify(phone, code)).status == 400


async def _gone(h: Harness, key: str) -> bool:
    return await h.redis.exists(key) == 0


async def test_hourly_cap_per_phone_and_client(h: Harness) -> None:
    phone, ip = h.new_phone(), h.new_ip()
    keys = h.keys_of(phone, ip=ip)
    for _ in range(5):
        assert (await h.send(phone, ip=ip)).status == 202
        await h.redis.delete(keys.cooldown, keys.gap, keys.sends)
    capped = await h.send(phone, ip=ip)
    assert capped.status == 429
    assert 3500 < int(capped.headers["Retry-After"]) <= 3600
    assert len(h.twilio.messages_to(phone)) == 5
    assert (await h.send(phone)).status == 202, "another client still gets a code"
    assert len(h.twilio.messages_to(phone)) == 6


async def test_cap_per_client_ip(h: Harness) -> None:
    ip = h.new_ip()
    for _ in range(5):
        assert (await h.send(h.new_phone(), ip=ip)).status == 202
    assert (await h.send(h.new_phone(), ip=ip)).status == 429
    assert (await h.send(h.new_phone(), ip=h.new_ip())).status == 202


async def test_bad_input_is_refused_without_echoing_it(h: Harness) -> None:
    cases = [
        ({"phone": "+12025550143"}, "phone"),  # a US number: outside the allowed region
        ({"phone": "not a phone 98765"}, "phone"),
        ({"phone": "+919876543210", "purpose": "withdraw"}, "purpose"),
    ]
    for body, field in cases:
        response = await h.client.post("/api/otp/send", json=body)
        assert response.status == 422
        problem = await response.json()
        assert problem["errors"][0]["field"] == field
        assert "2025550143" not in json.dumps(problem)
        assert "98765" not in json.dumps(problem)
    malformed = await h.verify("+919876543210", "12345x")
    assert malformed.status == 422
    assert "12345x" not in await malformed.text()
    assert not h.twilio.sent_messages
