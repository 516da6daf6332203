"""payment.failed and payment.refunded reach the user by push (in the user's words) and email,
each on its own queue, each once per payment or refund, however often the event comes."""

from __future__ import annotations

from notify_testkit import Publish, add_devices, consumed, registered_user, unique

from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import SendGridFake, SentMail
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentFailed, PaymentRefunded
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for


def failed(user_id: str, amount: int = 149_950) -> PaymentFailed:
    return PaymentFailed(
        payment_id=unique("pay"),
        order_id=unique("ord"),
        user_id=user_id,
        amount=amount,
        currency="INR",
        gateway="razorpay",
        error_code="BAD_REQUEST_ERROR",
        error_description="Payment failed",
    )


def refunded(
    user_id: str, amount: int, total: int, *, full: bool, payment_id: str = "pay-r1"
) -> PaymentRefunded:
    return PaymentRefunded(
        refund_id=unique("rfnd"),
        payment_id=payment_id,
        order_id="ord-r1",
        user_id=user_id,
        amount=amount,
        refunded_total=total,
        currency="INR",
        full=full,
    )


async def test_a_failed_payment_sends_one_push_and_one_email_and_copies_send_nothing(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, fcm: FcmFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool, first_name="Ravi")
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    payment = failed(user.user_id)

    event = await publish(payment)
    await wait_for(
        lambda: both_sent(pool, f"payment:{payment.payment_id}"),
        message="the failed-payment push and email sent",
    )

    [mail] = mails(sendgrid, user.email, "d-failed01")
    assert mail.template_data(str(user.email)) == {
        "first_name": "Ravi",
        "amount": "₹1,499.50",
        "order_url": f"https://rez.test/orders/{payment.order_id}",
    }
    [push] = fcm.deliveries_to(token)
    assert push.message["notification"]["title"] == "Payment failed"
    assert "₹1,499.50" in push.message["notification"]["body"]
    assert push.message["data"] == {
        "type": "payment_failed",
        "orderId": payment.order_id,
        "paymentId": payment.payment_id,
        "deepLink": f"rezapp://orders/{payment.order_id}",
    }
    categories = await pool.fetch(
        "SELECT DISTINCT category FROM deliveries WHERE source = $1",
        f"payment:{payment.payment_id}",
    )
    assert [r["category"] for r in categories] == ["transactional"]

    # The same event again (a lost ack, a DLQ replay), and the same failure under a new id.
    queues = ("notify.push-payment-failed", "notify.email-payment-failed")
    before = [consumed(q) for q in queues]
    await publish(event=event)
    await publish(payment)
    await wait_for(
        lambda: all(consumed(q) >= b + 2 for q, b in zip(queues, before, strict=True)),
        message="both queues to consume both copies",
    )
    assert len(mails(sendgrid, user.email, "d-failed01")) == 1
    assert len(fcm.deliveries_to(token)) == 1


async def test_each_refund_reaches_the_user_once_in_their_own_words(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, fcm: FcmFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool, first_name="Meera", locale="hi-IN")
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    payment_id = unique("pay")
    part = refunded(user.user_id, 20_000_00, 20_000_00, full=False, payment_id=payment_id)
    rest = refunded(user.user_id, 1_30_000_00, 1_50_000_00, full=True, payment_id=payment_id)
    queues = ("notify.push-payment-refunded", "notify.email-payment-refunded")
    before = [consumed(q) for q in queues]

    first = await publish(part)
    await publish(rest)
    await publish(event=first)  # redelivered: nothing new
    await wait_for(
        lambda: all(consumed(q) >= b + 3 for q, b in zip(queues, before, strict=True)),
        message="both queues to consume the three events",
    )

    for refund in (part, rest):
        assert await both_sent(pool, f"refund:{refund.refund_id}")
    pushes = sorted(p.message["notification"]["body"] for p in fcm.deliveries_to(token))
    assert len(pushes) == 2
    assert {p.message["notification"]["title"] for p in fcm.deliveries_to(token)} == {
        "रिफ़ंड भेज दिया गया"
    }
    assert any("₹20,000.00" in body for body in pushes)
    assert any("₹1,30,000.00" in body for body in pushes)  # lakhs apart, as Hindi readers read
    datas = sorted(
        (m.template_data(str(user.email)) for m in mails(sendgrid, user.email, "d-refund01")),
        key=lambda d: d["refund_kind"],
    )
    assert datas == [
        {
            "first_name": "Meera",
            "amount": "₹130,000.00",
            "refunded_total": "₹150,000.00",
            "refund_kind": "full",
            "order_url": "https://rez.test/orders/ord-r1",
        },
        {
            "first_name": "Meera",
            "amount": "₹20,000.00",
            "refunded_total": "₹20,000.00",
            "refund_kind": "partial",
            "order_url": "https://rez.test/orders/ord-r1",
        },
    ]


def mails(sendgrid: SendGridFake, email: str | None, template_id: str) -> list[SentMail]:
    return [m for m in sendgrid.mails_to(str(email)) if m.template_id == template_id]


async def both_sent(pool: Pool, source: str) -> bool:
    """Whether the push and the email about `source` are both sent."""
    rows = await pool.fetch("SELECT channel, status FROM deliveries WHERE source = $1", source)
    return {r["channel"]: r["status"] for r in rows} == {"email": "sent", "push": "sent"}
