"""SMS-pumping defence: a range whose conversion collapses is refused, other ranges flow, and an
operator with the `otp:prefixes` scope allows it again."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from rtmn_shared.testing.infra import Suite

if TYPE_CHECKING:
    from conftest import Harness, Starter

ATTACKED = "+917012"  # one operator series: the fraud ring's premium range
RULES = {"otp_pumping_floor": 0.5, "otp_pumping_min_sends": 10}


def number_in(prefix: str) -> str:
    return prefix + "".join(secrets.choice("0123456789") for _ in range(13 - len(prefix)))


def other_range() -> str:
    """A number in another series (+9160xx..+9169xx), never the attacked one."""
    return number_in("+916" + "".join(secrets.choice("0123456789") for _ in range(3)))


async def blocks(h: Harness) -> float:
    metrics = await (await h.client.get("/metrics")).text()
    line = 'rtmn_otp_prefix_blocks_total{region="IN"} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


async def send_and_verify(h: Harness, phone: str) -> None:
    assert (await h.send(phone)).status == 202
    assert (await h.verify(phone, h.twilio.messages_to(phone)[-1].body[:6])).status == 200


async def test_an_attack_on_one_range_is_blocked_while_other_ranges_flow(
    start_otp: Starter,
) -> None:
    async with start_otp(**RULES) as h:
        blocks_before = await blocks(h)
        for _ in range(10):  # ten numbers of one range, none ever verified, each from its own IP
            assert (await h.send(number_in(ATTACKED))).status == 202
            await send_and_verify(h, other_range())  # ordinary users elsewhere meanwhile
        victim = number_in(ATTACKED)
        refused = await h.send(victim)
        assert refused.status == 429
        assert refused.content_type == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0
        body = await refused.text()
        assert victim[3:] not in body
        assert ATTACKED not in body
        assert h.twilio.messages_to(victim) == []
        assert len(h.twilio.sent_messages) == 20, "nothing more was paid for"
        await send_and_verify(h, other_range())  # other ranges still flow
        assert await blocks(h) == blocks_before + 1
        metrics = await (await h.client.get("/metrics")).text()
        assert 'rtmn_otp_sends_total{outcome="limited_pumping",provider="none"}' in metrics


async def test_a_range_whose_users_verify_is_never_blocked(start_otp: Starter) -> None:
    async with start_otp(**RULES) as h:
        prefix = "+917013"
        for i in range(14):
            phone = number_in(prefix)
            if i % 3 == 0:  # a third never type their code: still above the floor
                assert (await h.send(phone)).status == 202
            else:
                await send_and_verify(h, phone)
        assert (await h.send(number_in(prefix))).status == 202


async def test_an_operator_with_the_prefixes_scope_allows_a_range_again(
    start_otp: Starter, suite: Suite
) -> None:
    async with start_otp(**RULES) as h:
        prefix = "+917014"
        for _ in range(10):
            assert (await h.send(number_in(prefix))).status == 202
        assert (await h.send(number_in(prefix))).status == 429

        blocked = "/api/otp/admin/prefixes/blocked"
        allow = "/api/otp/admin/prefixes/allow"
        operator = suite.bearer("ops-1", "otp:prefixes")
        listed = await (await h.client.get(blocked, headers=operator)).json()
        assert prefix in [b["prefix"] for b in listed["blocked"]]

        body = {"prefix": prefix}
        assert (await h.client.post(allow, json=body)).status == 401
        other_scope = suite.bearer("ops-2", "otp:other")
        assert (await h.client.post(allow, json=body, headers=other_scope)).status == 403
        assert (await h.send(number_in(prefix))).status == 429, "refused calls changed nothing"

        allowed = await h.client.post(allow, json=body, headers=operator)
        assert (allowed.status, await allowed.json()) == (
            200,
            {"prefix": prefix, "was_blocked": True},
        )
        assert (await h.send(number_in(prefix))).status == 202
        listed = await (await h.client.get(blocked, headers=operator)).json()
        assert prefix not in [b["prefix"] for b in listed["blocked"]]


async def test_a_malformed_prefix_is_a_problem_and_changes_nothing(
    start_otp: Starter, suite: Suite
) -> None:
    async with start_otp(**RULES) as h:
        prefix = "+917015"
        for _ in range(11):
            await h.send(number_in(prefix))
        operator = suite.bearer("ops-1", "otp:prefixes")
        for bad in ("917015", "+91 7015", "+9170150000000000", ""):
            answer = await h.client.post(
                "/api/otp/admin/prefixes/allow", json={"prefix": bad}, headers=operator
            )
            assert answer.status == 422
        assert (await h.send(number_in(prefix))).status == 429
