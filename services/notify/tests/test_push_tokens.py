"""Per-token FCM outcomes: dead tokens are deactivated, busy ones retried alone, none resent."""

from __future__ import annotations

from notify_testkit import Publish, add_devices, payment, status_is, unique

from rtmn_fakes.fcm import FcmFake
from rtmn_shared.events.catalogue import WalletCredited
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for


def sends_to(fcm: FcmFake, token: str) -> list[int | None]:
    """The status FCM answered each send to `token` with."""
    return [
        r.status
        for r in fcm.requests_to("messages:send")
        if (r.json or {}).get("message", {}).get("token") == token
    ]


async def test_unregistered_is_deactivated_unavailable_retried_until_sent_others_sent_once(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user_id = unique("user")
    gone, busy, fine = unique("tok-gone"), unique("tok-busy"), unique("tok-fine")
    await add_devices(pool, user_id, gone, busy, fine)
    fcm.set_token_state(gone, "UNREGISTERED")
    fcm.set_token_state(busy, "UNAVAILABLE")

    await publish(payment(user_id))
    await wait_for(lambda: sends_to(fcm, busy) == [503], message="the first try to fail")
    fcm.set_token_state(busy, "ok")  # FCM recovers before the next retry
    await wait_for(lambda: status_is(pool, user_id, "payment-success", "sent"), message="push sent")

    assert sends_to(fcm, gone) == [404]
    assert sends_to(fcm, busy) == [503, 200]
    assert sends_to(fcm, fine) == [200]
    active = {
        r["token"]: r["active"]
        for r in await pool.fetch("SELECT token, active FROM devices WHERE user_id = $1", user_id)
    }
    assert active == {gone: False, busy: True, fine: True}
    targets = {
        r["token"]: r["status"]
        for r in await pool.fetch(
            "SELECT token, t.status FROM push_targets t JOIN deliveries d ON d.id = t.delivery_id "
            "WHERE d.user_id = $1",
            user_id,
        )
    }
    assert targets == {gone: "dead", busy: "sent", fine: "sent"}
    attempts = await pool.fetchval(
        "SELECT attempts FROM deliveries WHERE user_id = $1 AND channel = 'push'", user_id
    )
    assert attempts == 2


async def test_quota_and_invalid_message_errors_never_deactivate(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user_id = unique("user")
    quota, sender = unique("tok-quota"), unique("tok-sender")
    await add_devices(pool, user_id, quota, sender)
    fcm.set_token_state(quota, "QUOTA_EXCEEDED")
    fcm.set_token_state(sender, "SENDER_ID_MISMATCH")

    credit = WalletCredited(
        entry_id=unique("entry"),
        user_id=user_id,
        coins=150,
        reason="cashback",
        reference="pay-1",
        balance_after=1150,
    )
    await publish(credit)
    await wait_for(lambda: sends_to(fcm, quota) == [429], message="the quota error")
    fcm.set_token_state(quota, "ok")
    await wait_for(lambda: status_is(pool, user_id, "wallet-credited", "sent"), message="push sent")

    [delivered] = fcm.deliveries_to(quota)
    assert delivered.message["data"] == {
        "type": "wallet_credited",
        "coins": "150",
        "balance": "1150",
        "deepLink": "rezapp://wallet",
    }
    assert sends_to(fcm, sender) == [403]
    active = {
        r["token"]: r["active"]
        for r in await pool.fetch("SELECT token, active FROM devices WHERE user_id = $1", user_id)
    }
    assert active == {quota: True, sender: False}


async def test_a_user_without_devices_is_skipped_and_reported(
    notify: RunningService, publish: Publish
) -> None:
    pool = notify.pool
    user_id = unique("user")

    await publish(payment(user_id))
    await wait_for(
        lambda: status_is(pool, user_id, "payment-success", "skipped"), message="push skipped"
    )
    await wait_for(
        lambda: status_is(pool, user_id, "order-confirmation", "failed"),
        message="unknown recipient failed",
    )

    reasons = await pool.fetch(
        "SELECT payload->'data'->>'channel' AS channel, payload->'data'->>'reason' AS reason "
        "FROM outbox WHERE type = 'notification.failed' AND payload->'data'->>'user_id' = $1 "
        "ORDER BY 1",
        user_id,
    )
    assert [(r["channel"], r["reason"]) for r in reasons] == [
        ("email", "unknown recipient"),
        ("push", "skipped: no active device"),
    ]
