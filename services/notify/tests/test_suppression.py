"""What SendGrid tells us stops mail: an unsubscribe or spam report turns that category's email
off, a hard bounce or a drop suppresses the address until it changes, and promotional mail
carries a signed RFC 8058 one-click unsubscribe that needs no login."""

from __future__ import annotations

from urllib.parse import urlsplit

from notify_testkit import (
    Publish,
    delivery,
    in_daytime,
    payment,
    registered_user,
    status_is,
    unique,
)

from rtmn_fakes.sendgrid import EventWebhookSigner, SendGridFake
from rtmn_shared.events.catalogue import NotificationRequested, UserRegistered
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for

WEBHOOK = "/api/webhooks/sendgrid"


def promotion(user_id: str) -> NotificationRequested:
    return NotificationRequested(
        request_id=unique("promo"),
        user_ids=[user_id],
        title="Sale",
        message="50% off",
        data={"type": "promotion"},
        email_template="d-promo01",
    )


async def promotional_mail(
    notify: RunningService, publish: Publish, user: UserRegistered
) -> dict[str, object]:
    """Sends one promotional mail to `user` and waits for its row to settle."""
    command = promotion(user.user_id)
    await publish(command)
    source = f"request:{command.request_id}"

    async def settled() -> dict[str, object] | None:
        row = await notify.pool.fetchrow(
            "SELECT * FROM deliveries WHERE source = $1 AND channel = 'email'", source
        )
        return dict(row) if row and row["status"] != "queued" else None

    return await wait_for(settled, message="the promotional mail")


async def signed_events(notify: RunningService, signer: EventWebhookSigner, body: bytes) -> None:
    response = await notify.client.post(WEBHOOK, data=body, headers=signer.headers(body))
    assert response.status == 204


async def test_an_unsubscribe_or_group_unsubscribe_turns_that_categorys_email_off(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    for kind in ("unsubscribe", "group_unsubscribe"):
        user = await registered_user(publish, notify.pool)
        await in_daytime(notify.pool, user.user_id)
        first = await promotional_mail(notify, publish, user)
        assert first["status"] == "sent"

        body = sendgrid.build_events_for(str(first["provider_message_id"]), kind)
        await signed_events(notify, signer, body)
        second = await promotional_mail(notify, publish, user)

        assert (second["status"], second["last_error"]) == (
            "suppressed",
            "preference: promotional email is off",
        ), kind
        source = await notify.pool.fetchval(
            "SELECT source FROM preferences WHERE user_id = $1", user.user_id
        )
        assert source == kind


async def test_a_spam_report_about_a_transactional_mail_cannot_turn_it_off(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    await publish(payment(user.user_id))
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="order mail"
    )
    row = await delivery(pool, user.user_id, "order-confirmation")
    assert row is not None

    await signed_events(
        notify, signer, sendgrid.build_events_for(str(row["provider_message_id"]), "spamreport")
    )

    assert (
        await pool.fetchval("SELECT count(*) FROM preferences WHERE user_id = $1", user.user_id)
        == 0
    )


async def test_a_hard_bounce_suppresses_the_address_until_it_changes_and_a_block_does_not(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    pool = notify.pool
    blocked_user = await registered_user(publish, pool)
    user = await registered_user(publish, pool)
    for someone in (blocked_user, user):
        await in_daytime(pool, someone.user_id)
    blocked = await promotional_mail(notify, publish, blocked_user)
    bounced = await promotional_mail(notify, publish, user)

    await signed_events(
        notify,
        signer,
        sendgrid.build_events_for(str(blocked["provider_message_id"]), "bounce", type="blocked"),
    )
    await signed_events(
        notify,
        signer,
        sendgrid.build_events_for(
            str(bounced["provider_message_id"]),
            "bounce",
            type="bounce",
            bounce_classification="Invalid Address",
        ),
    )
    still = await promotional_mail(notify, publish, blocked_user)
    stopped = await promotional_mail(notify, publish, user)
    # The user gives a new address (a newer user.registered): mail goes to it.
    await publish(user.model_copy(update={"email": f"new-{user.email}"}))
    await wait_for(
        lambda: pool.fetchval(
            "SELECT email FROM recipients WHERE user_id = $1 AND email LIKE 'new-%'",
            user.user_id,
        ),
        message="the new address",
    )
    moved = await promotional_mail(notify, publish, user)

    assert still["status"] == "sent"
    assert (stopped["status"], stopped["last_error"]) == (
        "suppressed",
        "address suppressed: bounce: Invalid Address",
    )
    assert moved["status"] == "sent"
    assert sendgrid.mails_to(f"new-{user.email}")


async def test_a_drop_suppresses_the_address_even_for_transactional_mail(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    await in_daytime(pool, user.user_id)
    first = await promotional_mail(notify, publish, user)
    await signed_events(
        notify,
        signer,
        sendgrid.build_events_for(str(first["provider_message_id"]), "dropped"),
    )

    await publish(payment(user.user_id))
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "suppressed"),
        message="the order mail suppressed",
    )
    row = await delivery(pool, user.user_id, "order-confirmation")
    assert row is not None
    assert row["last_error"] == "address suppressed: dropped: Bounced Address"


async def test_promotional_mail_carries_a_signed_one_click_unsubscribe_that_needs_no_login(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    await in_daytime(pool, user.user_id)
    await promotional_mail(notify, publish, user)
    [mail] = sendgrid.mails_to(str(user.email))[-1:]
    headers = mail.headers_for(str(user.email))
    url = headers["List-Unsubscribe"].strip("<>")
    path = urlsplit(url).path
    form = {"List-Unsubscribe": "One-Click"}
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")

    refused = await notify.client.post(forged, data=form)
    no_body = await notify.client.post(path, data={})
    assert (
        await pool.fetchval("SELECT count(*) FROM preferences WHERE user_id = $1", user.user_id)
        == 0
    )
    done = await notify.client.post(path, data=form)
    after = await promotional_mail(notify, publish, user)

    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url.startswith("https://api.rez.test/api/notify/unsubscribe/")
    assert (refused.status, refused.content_type) == (404, "application/problem+json")
    assert no_body.status == 400
    assert (done.status, await done.json()) == (
        200,
        {"category": "promotional", "channel": "email", "enabled": False},
    )
    assert (after["status"], after["last_error"]) == (
        "suppressed",
        "preference: promotional email is off",
    )


async def test_transactional_mail_has_no_unsubscribe_header(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    user = await registered_user(publish, notify.pool)
    await publish(payment(user.user_id))
    mail = sendgrid.wait_for_mail(str(user.email))
    assert "List-Unsubscribe" not in mail.headers_for(str(user.email))
