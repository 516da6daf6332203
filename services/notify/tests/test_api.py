"""The HTTP API: the caller's devices and notifications, and send-on-request with its key."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from notify_testkit import (
    Publish,
    add_devices,
    consumed,
    in_daytime,
    payment,
    registered_user,
    status_is,
    unique,
)

from notify.domain import PUSH_TEMPLATES
from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.events.catalogue import NotificationRequested
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER

DEVICES = "/api/notify/devices"
SEND = "/api/notify/send"


async def test_devices_are_registered_moved_and_removed_by_their_owner_only(
    notify: RunningService, suite: Suite
) -> None:
    client, pool = notify.client, notify.pool
    alice, bob = unique("user"), unique("user")
    token = unique("tok")

    put = await client.put(
        DEVICES, json={"token": token, "platform": "ios"}, headers=suite.bearer(alice)
    )
    assert (put.status, await put.json()) == (
        200,
        {"token": token, "platform": "ios", "active": True},
    )
    # The same install signs in as someone else: the token follows the new user.
    await client.put(DEVICES, json={"token": token, "platform": "ios"}, headers=suite.bearer(bob))
    assert await pool.fetchval("SELECT user_id FROM devices WHERE token = $1", token) == bob

    denied = await client.delete(f"{DEVICES}/{token}", headers=suite.bearer(alice))
    assert denied.status == 404
    removed = await client.delete(f"{DEVICES}/{token}", headers=suite.bearer(bob))
    assert removed.status == 204
    assert await pool.fetchval("SELECT count(*) FROM devices WHERE token = $1", token) == 0

    anonymous = await client.put(DEVICES, json={"token": token, "platform": "ios"})
    assert anonymous.status == 401
    bad = await client.put(
        DEVICES, json={"token": token, "platform": "symbian"}, headers=suite.bearer(alice)
    )
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["field"] == "platform"


async def test_notifications_lists_the_callers_own_deliveries_newest_first(
    notify: RunningService, suite: Suite, publish: Publish
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    await add_devices(pool, user.user_id, unique("tok"))
    await publish(payment(user.user_id))
    await wait_for(
        lambda: status_is(pool, user.user_id, "payment-success", "sent"), message="push sent"
    )
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email"
    )

    mine = await notify.client.get(
        "/api/notify/notifications?limit=10", headers=suite.bearer(user.user_id)
    )
    others = await notify.client.get("/api/notify/notifications", headers=suite.bearer("nobody"))

    items = (await mine.json())["items"]
    assert {(i["channel"], i["template"], i["status"]) for i in items} == {
        ("email", "welcome", "sent"),
        ("email", "order-confirmation", "sent"),
        ("push", "payment-success", "sent"),
    }
    assert [i["created_at"] for i in items] == sorted(
        (i["created_at"] for i in items), reverse=True
    )
    older = await notify.client.get(
        "/api/notify/notifications",
        params={"limit": "5", "before": items[0]["created_at"]},
        headers=suite.bearer(user.user_id),
    )
    assert [i["id"] for i in (await older.json())["items"]] == [i["id"] for i in items[1:]]
    assert (await others.json()) == {"items": []}


def flash_sale(request_id: str, user_ids: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "user_ids": user_ids,
        "template": "flash_sale",
        "image": "https://cdn.rez.test/sale.png",
        "data": {
            "type": "promotion",
            "deepLink": "rezapp://sale/flash",
            "action": "open_sale",
            "campaign": "diwali",
        },
        **extra,
    }


def signed_in(suite: Suite, user_id: str, seconds_ago: int, *, refreshed: bool) -> dict[str, str]:
    """A token from a sign-in `seconds_ago`: issued then, or refreshed now (auth_time then)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "exp": now + 3600,
        "iat": now - seconds_ago,
    }
    if refreshed:
        claims.update(iat=now, auth_time=now - seconds_ago)
    token = jwt.encode(claims, suite.private_key, algorithm="EdDSA")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("refreshed", [False, True])
async def test_a_device_moves_to_another_user_only_after_a_recent_sign_in(
    notify: RunningService, suite: Suite, refreshed: bool
) -> None:
    client, pool = notify.client, notify.pool
    alice, mallory = unique("user"), unique("user")
    token = unique("tok")
    device = {"token": token, "platform": "android"}
    assert (await client.put(DEVICES, json=device, headers=suite.bearer(alice))).status == 200

    stale = await client.put(
        DEVICES, json=device, headers=signed_in(suite, mallory, 3600, refreshed=refreshed)
    )
    assert stale.status == 409
    assert "sign in again" in (await stale.json())["detail"]
    assert await pool.fetchval("SELECT user_id FROM devices WHERE token = $1", token) == alice
    # The owner's own re-registration needs no fresh sign-in.
    own = await client.put(
        DEVICES, json=device, headers=signed_in(suite, alice, 3600, refreshed=refreshed)
    )
    assert own.status == 200
    fresh = await client.put(
        DEVICES, json=device, headers=signed_in(suite, mallory, 60, refreshed=refreshed)
    )
    assert fresh.status == 200
    assert await pool.fetchval("SELECT user_id FROM devices WHERE token = $1", token) == mallory


async def test_send_needs_the_send_or_service_scope_and_a_repeated_request_sends_nothing_new(
    notify: RunningService, suite: Suite, publish: Publish, fcm: FcmFake, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool, first_name="Ravi")
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    await in_daytime(pool, user.user_id)
    body = flash_sale(unique("req"), [user.user_id], email_template="d-promo01")
    service = suite.bearer("orders-service", "service")

    forbidden = await notify.client.post(SEND, json=body, headers=suite.bearer(user.user_id))
    admin = await notify.client.post(SEND, json=body, headers=suite.bearer("ops", "admin"))
    first = await notify.client.post(SEND, json=body, headers=service)
    again = await notify.client.post(SEND, json=body, headers=suite.bearer("ops", "notify:send"))

    not_strings = await notify.client.post(
        SEND, json={**body, "data": {"type": "x", "count": 3}}, headers=service
    )
    assert not_strings.status == 422
    # The words of a push are ours: a caller's own title or text is refused, naming the field.
    phishing = {"data": {"type": "promotion", "deepLink": "https://rez-money.example/login"}}
    for free_text in (
        {"title": "Your account is locked: call +91..."},
        {"template": "custom"},
        phishing,
    ):
        refused = await notify.client.post(SEND, json={**body, **free_text}, headers=service)
        assert refused.status == 422
        assert next(iter(free_text)) in await refused.text()
    assert "data.deepLink" in await refused.text()
    assert (forbidden.status, admin.status) == (403, 403)
    assert first.status == 202
    accepted = await first.json()
    assert (again.status, await again.json()) == (200, {**accepted, "duplicate": True})
    assert accepted["duplicate"] is False
    await wait_for(lambda: status_is(pool, user.user_id, "request", "sent"), message="push")
    await wait_for(lambda: status_is(pool, user.user_id, "d-promo01", "sent"), message="email")
    [push] = fcm.deliveries_to(token)
    assert push.message["notification"] == {
        "title": "Flash Sale!",
        "body": "A limited-time offer is live. Tap to see it.",
        "image": "https://cdn.rez.test/sale.png",
    }
    assert push.message["data"] == {
        "type": "promotion",
        "deepLink": "rezapp://sale/flash",
        "action": "open_sale",
        "campaign": "diwali",
    }
    [mail] = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-promo01"]
    assert mail.template_data(str(user.email))["first_name"] == "Ravi"
    commands = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'notification.requested' "
        "AND payload->'data'->>'request_id' = $1",
        body["request_id"],
    )
    assert commands == 1


async def test_a_campaign_goes_out_in_batches_on_its_own_queue_once_per_user(
    notify: RunningService, suite: Suite, fcm: FcmFake
) -> None:
    pool = notify.pool
    users = [unique("fan") for _ in range(5)]
    tokens = {user: unique("tok") for user in users}
    for user, token in tokens.items():
        await add_devices(pool, user, token)
    await in_daytime(pool, *users)
    request_id = unique("campaign")
    body = flash_sale(request_id, users)

    response = await notify.client.post(SEND, json=body, headers=suite.bearer("ops", "notify:send"))
    assert response.status == 202
    await wait_for(
        lambda: pool.fetchval(
            "SELECT count(*) = 5 FROM deliveries WHERE source = $1 AND status = 'sent'",
            f"request:{request_id}",
        ),
        message="every fan's push",
    )

    assert all(len(fcm.deliveries_to(token)) == 1 for token in tokens.values())
    batches = await pool.fetchval("SELECT batches FROM campaigns WHERE request_id = $1", request_id)
    assert batches == 3  # 5 users in batches of 2
    routed = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'notify.campaign-batch' "
        "AND payload->'data'->>'request_id' = $1",
        request_id,
    )
    assert routed == 3


async def test_readiness_names_the_live_providers_and_openapi_lists_the_routes(
    notify: RunningService,
) -> None:
    response = await notify.client.get("/readyz")
    body = await response.json()
    spec = await (await notify.client.get("/openapi.json")).json()

    assert response.status == 200
    assert body["providers"] == {"sendgrid": "live", "fcm": "live"}
    assert set(spec["paths"]) == {
        "/api/notify/devices",
        "/api/notify/devices/{token}",
        "/api/notify/notifications",
        "/api/notify/send",
        "/api/notify/preferences",
        "/api/notify/unsubscribe/{token}",
        "/api/notify/inbox",
        "/api/notify/inbox/{id}/read",
        "/api/webhooks/sendgrid",
    }


async def test_a_command_from_another_service_sent_twice_notifies_once(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user_id, token = unique("user"), unique("tok")
    await add_devices(pool, user_id, token)
    command = NotificationRequested(
        request_id=unique("order-shipped"),
        user_ids=[user_id],
        title=PUSH_TEMPLATES["order_update"][0],
        message=PUSH_TEMPLATES["order_update"][1],
        data={"type": "order_shipped", "deepLink": "rezapp://orders/1"},
        category="transactional",
    )

    before = consumed("notify.send-requested")
    # Two events (two ids) carrying the same request: a producer that retried its own emit.
    await publish(command)
    await publish(command)
    await wait_for(lambda: status_is(pool, user_id, "request", "sent"), message="push")
    await wait_for(
        lambda: consumed("notify.send-requested") >= before + 2, message="both copies consumed"
    )

    assert len(fcm.deliveries_to(token)) == 1
