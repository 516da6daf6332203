"""Strangers spend only their own budget: the owner still gets a code and logs in, brute force
spread over many clients still fails, and no answer tells whether a login is in progress.

Time is not waited out: a test deletes the key a wait would have expired ("as if it passed")."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import ClientResponse
    from conftest import Harness


def guess(code: str, n: int) -> str:
    """The n-th wrong guess at `code` (n >= 1)."""
    return f"{(int(code) + n) % 10**6:06d}"


def latest_code(h: Harness, phone: str) -> str:
    match = re.search(r"\b(\d{6})\b", h.twilio.messages_to(phone)[-1].body)
    assert match is not None
    return match.group(1)


async def attempts_left(response: ClientResponse) -> int:
    assert response.status == 400
    left: int = (await response.json())["attempts_left"]
    return left


async def test_a_strangers_sends_and_wrong_codes_do_not_lock_the_owner_out(h: Harness) -> None:
    phone, owner = h.new_phone(), h.new_ip()
    keys = h.keys_of(phone, ip=owner)
    gaps = []
    for _ in range(8):
        # One round: a burst of sends from one address, then wrong codes from four others.
        sender = h.new_ip()
        burst = await asyncio.gather(*(h.send(phone, ip=sender) for _ in range(5)))
        assert sorted(r.status for r in burst) == [202] + [429] * 4
        gaps.append(int(await h.redis.get(keys.gap)))
        code = latest_code(h, phone)
        guessers = [h.new_ip() for _ in range(4)]
        await asyncio.gather(
            *(h.verify(phone, guess(code, n), ip=ip) for ip in guessers for n in range(1, 6))
        )
        assert await h.redis.exists(keys.code) == 0, "twenty guesses killed the code at ten"
        await h.redis.delete(keys.gap)  # the stranger waits the gap out
    assert len(h.twilio.messages_to(phone)) == 8, "one SMS per gap, whatever the burst"
    assert gaps == [30_000] * 5 + [60_000, 120_000, 240_000], "the gap grows after five sends"

    # The owner: slowed down, not locked out for a day.
    await h.redis.set(keys.gap, "480000", px=480_000)  # the gap the ninth send would have set
    slowed = await h.send(phone, ip=owner)
    assert slowed.status == 429
    assert 470 < int(slowed.headers["Retry-After"]) <= 480
    await h.redis.delete(keys.gap)  # eight minutes later
    h.twilio.reset()
    assert (await h.send(phone, ip=owner)).status == 202
    code = h.twilio_code(phone)
    # The owner's attempts are all there, and strangers' guesses meanwhile do not burn them.
    assert await attempts_left(await h.verify(phone, guess(code, 1), ip=owner)) == 2
    for ip in (h.new_ip(), h.new_ip()):
        await asyncio.gather(*(h.verify(phone, guess(code, n), ip=ip) for n in range(2, 6)))
    response = await h.verify(phone, code, ip=owner)
    assert response.status == 200
    assert "token" in await response.json()


async def test_wrong_codes_from_many_clients_invalidate_the_code_at_the_ceiling(
    h: Harness,
) -> None:
    phone, owner = h.new_phone(), h.new_ip()
    assert (await h.send(phone, ip=owner)).status == 202
    code = h.twilio_code(phone)
    keys = h.keys_of(phone, ip=owner)

    clients = [h.new_ip() for _ in range(20)]
    answers = await asyncio.gather(
        *(h.verify(phone, guess(code, 2 * i + k), ip=ip) for i, ip in enumerate(clients)
          for k in (1, 2))
    )  # fmt: skip
    assert {r.status for r in answers} == {400}
    assert sorted([await attempts_left(r) for r in answers]) == [1] * 20 + [2] * 20
    assert await h.redis.exists(keys.code) == 0
    # Forty guesses from twenty clients, yet only ten reached the code: then even it fails.
    assert (await h.verify(phone, code, ip=h.new_ip())).status == 400
    assert (await h.verify(phone, code, ip=owner)).status == 400

    # Nothing holds the phone back: the owner waits out only his own resend cooldown.
    assert await h.redis.exists(keys.gap) == 0
    waiting = await h.send(phone, ip=owner)
    assert waiting.status == 429
    assert int(waiting.headers["Retry-After"]) <= 30
    await h.redis.delete(keys.cooldown)  # as if 30 s had passed
    h.twilio.reset()
    assert (await h.send(phone, ip=owner)).status == 202
    assert (await h.verify(phone, h.twilio_code(phone), ip=owner)).status == 200


async def test_the_verify_answer_is_the_same_with_or_without_a_live_code(h: Harness) -> None:
    live, idle = h.new_phone(), h.new_phone()
    assert (await h.send(live)).status == 202
    wrong = guess(h.twilio_code(live), 1)

    stranger = h.new_ip()
    for expected_left in (2, 1, 0, 0):
        answers = [await h.verify(phone, wrong, ip=stranger) for phone in (live, idle)]
        seen = [(r.status, r.content_type, await r.read()) for r in answers]
        assert seen[0] == seen[1]
        assert await attempts_left(answers[0]) == expected_left


async def test_the_send_answer_is_the_same_with_or_without_a_live_code(h: Harness) -> None:
    live, idle = h.new_phone(), h.new_phone()
    assert (await h.send(live)).status == 202
    stranger = h.new_ip()
    answers = [await h.send(phone, ip=stranger) for phone in (live, idle)]
    seen = [(r.status, r.headers.get("Retry-After"), await r.read()) for r in answers]
    assert seen[0] == seen[1]
    assert seen[0][0] == 202
    assert len(h.twilio.messages_to(live)) == 1, "the live phone got no second SMS"
    assert len(h.twilio.messages_to(idle)) == 1


async def test_the_gap_between_sends_doubles_after_five_and_stops_at_the_cap(h: Harness) -> None:
    phone = h.new_phone()
    keys = h.keys_of(phone)
    gaps = []
    for _ in range(11):
        assert (await h.send(phone)).status == 202
        gaps.append(int(await h.redis.get(keys.gap)))
        assert 0 < await h.redis.pttl(keys.gap) <= gaps[-1]
        await h.redis.delete(keys.gap)
    assert gaps == [30_000] * 5 + [60_000, 120_000, 240_000, 480_000, 900_000, 900_000]
    # The count forgets after an hour without sends.
    assert 3_590_000 < await h.redis.pttl(keys.sends) <= 3_600_000

    await h.redis.set(keys.gap, "900000", px=900_000)
    refused = await h.send(phone)
    assert refused.status == 429
    assert 890 < int(refused.headers["Retry-After"]) <= 900
    assert "many codes" in (await refused.json())["detail"]
