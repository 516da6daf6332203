"""payment.success fans out to an email and a push, each on its own queue, each sent once."""

from __future__ import annotations

from notify_testkit import (
    Publish,
    add_devices,
    consumed,
    delivery,
    payment,
    registered_user,
    status_is,
    unique,
)

from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for


async def test_one_payment_sends_one_email_and_one_push_and_copies_send_nothing(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, fcm: FcmFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool, first_name="Asha")
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    paid = payment(user.user_id, amount=149_950)

    event = await publish(paid)
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email sent"
    )
    await wait_for(
        lambda: status_is(pool, user.user_id, "payment-success", "sent"), message="push sent"
    )

    [mail] = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-order01"]
    assert mail.template_data(str(user.email)) == {
        "first_name": "Asha",
        "order_number": paid.order_number,
        "order_date": "27 Nov 2026",
        "total": "₹1,499.50",
        "tracking_url": f"https://rez.test/orders/{paid.order_id}/track",
        "tier": "gold",
    }
    email_row = await delivery(pool, user.user_id, "order-confirmation")
    assert email_row is not None
    assert mail.custom_args == {
        "event_id": str(event.id),
        "notification_id": str(email_row["id"]),
    }
    assert email_row["provider_message_id"] == mail.message_id
    [push] = fcm.deliveries_to(token)
    assert push.message["notification"]["title"] == "Payment Successful"
    assert paid.order_number in push.message["notification"]["body"]
    assert push.message["data"] == {
        "type": "payment_success",
        "orderId": paid.order_id,
        "orderNumber": paid.order_number,
        "deepLink": f"rezapp://orders/{paid.order_id}",
    }

    # The broker hands the very same event over again (a lost ack, a replay from the DLQ).
    queues = ("notify.email-order-confirmation", "notify.push-payment-success")
    before = [consumed(q) for q in queues]
    await publish(event=event)
    # And the producer emits the same payment again under a new event id.
    await publish(paid)
    await wait_for(
        lambda: all(consumed(q) >= b + 2 for q, b in zip(queues, before, strict=True)),
        message="both queues to consume both copies",
    )
    orders = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-order01"]
    assert len(orders) == 1
    assert len(fcm.deliveries_to(token)) == 1
    attempts = await pool.fetch(
        "SELECT attempts FROM deliveries WHERE user_id = $1 AND template <> 'welcome'",
        user.user_id,
    )
    assert [r["attempts"] for r in attempts] == [1, 1]
    sent_events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'notification.sent' "
        "AND payload->'data'->>'user_id' = $1",
        user.user_id,
    )
    assert sent_events == 3  # welcome email, order email, payment push


async def test_the_push_speaks_the_recipients_locale_and_the_inbox_keeps_its_words(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    hindi = await registered_user(publish, pool, locale="hi")
    unknown = await registered_user(publish, pool, locale="fr-FR")
    tokens = {hindi.user_id: unique("tok"), unknown.user_id: unique("tok")}
    for user_id, token in tokens.items():
        await add_devices(pool, user_id, token)

    for user_id in tokens:
        await publish(payment(user_id, amount=12_345_650))
    for user_id in tokens:
        await wait_for(
            lambda u=user_id: status_is(pool, u, "payment-success", "sent"), message="push sent"
        )

    [push] = fcm.deliveries_to(tokens[hindi.user_id])
    assert push.message["notification"]["title"] == "भुगतान सफल"
    assert "₹1,23,456.50" in push.message["notification"]["body"]
    row = await delivery(pool, hindi.user_id, "payment-success")
    assert row is not None
    assert row["title"] == "भुगतान सफल"  # what the in-app inbox shows
    [fallback] = fcm.deliveries_to(tokens[unknown.user_id])
    assert fallback.message["notification"]["title"] == "Payment Successful"
    assert "₹123,456.50" in fallback.message["notification"]["body"]
