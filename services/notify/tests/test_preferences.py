"""Preferences: per category and channel, with defaults; every send consults them in its claim,
and a message they stop is recorded `suppressed` with the reason, never silently dropped."""

from __future__ import annotations

from typing import Any

from notify_testkit import (
    Publish,
    add_devices,
    delivery,
    in_daytime,
    payment,
    registered_user,
    status_is,
    unique,
)

from notify.campaigns import requested_consent
from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.events.catalogue import NotificationRequested, WalletCredited
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for

PREFERENCES = "/api/notify/preferences"


def as_map(body: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {(p["category"], p["channel"]): p["enabled"] for p in body["preferences"]}


async def test_defaults_are_opt_in_for_promotional_sms_and_whatsapp_and_changes_are_kept(
    notify: RunningService, suite: Suite
) -> None:
    user = unique("user")
    auth = suite.bearer(user)

    fresh = await notify.client.get(PREFERENCES, headers=auth)
    body = await fresh.json()
    defaults = as_map(body)
    changed = await notify.client.put(
        PREFERENCES,
        json={
            "time_zone": "Europe/London",
            "preferences": [
                {"category": "promotional", "channel": "whatsapp", "enabled": True},
                {"category": "promotional", "channel": "email", "enabled": True},
                {"category": "promotional", "channel": "email", "enabled": False},
            ],
        },
        headers=auth,
    )
    now = await (await notify.client.get(PREFERENCES, headers=auth)).json()
    anonymous = await notify.client.get(PREFERENCES)

    assert fresh.status == 200
    assert body["time_zone"] == "Asia/Kolkata"
    assert defaults[("promotional", "sms")] is False
    assert defaults[("promotional", "whatsapp")] is False
    assert defaults[("promotional", "push")] is True
    assert defaults[("transactional", "sms")] is True
    assert all(p["locked"] for p in body["preferences"] if p["category"] == "transactional")
    assert changed.status == 200
    assert now == await changed.json()
    assert now["time_zone"] == "Europe/London"
    assert as_map(now) == {
        **defaults,
        ("promotional", "whatsapp"): True,
        ("promotional", "email"): False,
    }
    assert anonymous.status == 401


async def test_turning_off_transactional_or_a_bad_zone_is_a_problem_that_changes_nothing(
    notify: RunningService, suite: Suite
) -> None:
    user = unique("user")
    auth = suite.bearer(user)
    before = await (await notify.client.get(PREFERENCES, headers=auth)).json()

    transactional = await notify.client.put(
        PREFERENCES,
        json={
            "preferences": [
                {"category": "promotional", "channel": "push", "enabled": False},
                {"category": "transactional", "channel": "email", "enabled": False},
            ]
        },
        headers=auth,
    )
    bad_zone = await notify.client.put(
        PREFERENCES,
        json={
            "time_zone": "Mars/Olympus_Mons",
            "preferences": [{"category": "promotional", "channel": "push", "enabled": False}],
        },
        headers=auth,
    )
    unknown = await notify.client.put(
        PREFERENCES,
        json={"preferences": [{"category": "gossip", "channel": "push", "enabled": False}]},
        headers=auth,
    )
    after = await (await notify.client.get(PREFERENCES, headers=auth)).json()

    problem = await transactional.json(content_type=None)
    assert (transactional.status, transactional.content_type) == (422, "application/problem+json")
    assert problem["detail"] == "transactional email messages cannot be turned off"
    assert problem["errors"] == [
        {
            "field": "preferences.1.enabled",
            "message": "transactional email messages cannot be turned off",
        }
    ]
    assert bad_zone.status == 422
    assert (await bad_zone.json(content_type=None))["errors"][0]["field"] == "time_zone"
    assert unknown.status == 422
    assert after == before
    rows = await notify.pool.fetchval("SELECT count(*) FROM preferences WHERE user_id = $1", user)
    assert rows == 0


async def test_a_channel_turned_off_is_suppressed_with_its_reason_and_the_others_still_go(
    notify: RunningService, suite: Suite, publish: Publish, fcm: FcmFake, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    await in_daytime(pool, user.user_id)
    off = await notify.client.put(
        PREFERENCES,
        json={"preferences": [{"category": "promotional", "channel": "push", "enabled": False}]},
        headers=suite.bearer(user.user_id),
    )
    assert off.status == 200
    sale = NotificationRequested(
        request_id=unique("sale"),
        user_ids=[user.user_id],
        title="Sale",
        message="50% off",
        data={"type": "promotion"},
        email_template="d-promo01",
    )

    await publish(sale)
    await wait_for(lambda: status_is(pool, user.user_id, "d-promo01", "sent"), message="email")
    await wait_for(lambda: status_is(pool, user.user_id, "request", "suppressed"), message="push")
    await publish(sale)  # the same request again: still suppressed, still not sent

    push = await delivery(pool, user.user_id, "request")
    assert push is not None
    assert (push["status"], push["last_error"], push["category"]) == (
        "suppressed",
        "preference: promotional push is off",
        "promotional",
    )
    assert (push["attempts"], push["lease_until"]) == (0, None)
    assert fcm.deliveries_to(token) == []
    assert len(sendgrid.mails_to(str(user.email))) >= 1


async def test_a_change_applies_to_the_next_message_and_transactional_always_goes(
    notify: RunningService, suite: Suite, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    token = unique("tok")
    await add_devices(pool, user.user_id, token)

    def credit() -> WalletCredited:
        return WalletCredited(
            entry_id=unique("entry"),
            user_id=user.user_id,
            coins=50,
            reason="cashback",
            reference=unique("pay"),
            balance_after=50,
        )

    await publish(credit())
    await wait_for(
        lambda: status_is(pool, user.user_id, "wallet-credited", "sent"), message="first credit"
    )
    await notify.client.put(
        PREFERENCES,
        json={"preferences": [{"category": "wallet", "channel": "push", "enabled": False}]},
        headers=suite.bearer(user.user_id),
    )
    await publish(credit())
    await publish(payment(user.user_id))
    await wait_for(
        lambda: pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE user_id = $1 AND template = 'wallet-credited'"
            " AND status = 'suppressed'",
            user.user_id,
        ),
        message="the second credit's push suppressed",
    )
    await wait_for(
        lambda: status_is(pool, user.user_id, "payment-success", "sent"), message="payment push"
    )

    titles = [d.message["notification"]["title"] for d in fcm.deliveries_to(token)]
    assert sorted(titles) == ["Payment Successful", "REZ Coins Credited"]


def test_a_request_of_a_category_we_do_not_know_is_treated_as_promotional() -> None:
    def consent_of(category: str) -> str:
        command = NotificationRequested(
            request_id="r", user_ids=["u1", "u2"], title="t", message="m", category=category
        )
        return requested_consent(command, "u2").category

    assert consent_of("gossip") == "promotional"
    assert consent_of("wallet") == "wallet"
