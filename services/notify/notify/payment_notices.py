"""payment.failed and payment.refunded reach the user: a push in the user's locale (an SMS in it
when the push reaches no one: no live device) and an email, each on its own queue, each once per
payment (failed) or refund (refunded), transactional."""

from __future__ import annotations

from notify import domain, plans, store
from notify.delivery import Deliveries, key
from notify.domain import Links, Templates
from notify.providers import PushMessage
from notify.templates import TextTemplates
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentFailed, PaymentRefunded
from rtmn_shared.events.consumer import Delivery, Handler


def build_payment_notices(
    pool: Pool,
    deliveries: Deliveries,
    *,
    templates: Templates,
    texts: TextTemplates,
    locales: store.Locales,
    links: Links,
) -> list[Handler]:
    async def push_or_sms(
        delivery: Delivery[PaymentFailed] | Delivery[PaymentRefunded],
        about: str,
        template: str,
        push: PushMessage,
        sms: str,
    ) -> None:
        """The push, and if it reached no one (no live device, or refused), the SMS: one
        delivery row each, so a redelivery goes on where it stopped."""
        user_id = delivery.data.user_id
        pushed = await deliveries.push(key(delivery, about, "push", user_id, template), push)
        if plans.falls_through(pushed):
            await deliveries.text(key(delivery, about, "sms", user_id, template), sms)

    async def push_failed(delivery: Delivery[PaymentFailed]) -> None:
        failed = delivery.data
        locale = await locales.of(failed.user_id)
        await push_or_sms(
            delivery,
            f"payment:{failed.payment_id}",
            "payment-failed",
            domain.payment_failed_push(failed, links, texts, locale),
            domain.payment_failed_sms(failed, texts, locale),
        )

    async def push_refunded(delivery: Delivery[PaymentRefunded]) -> None:
        refund = delivery.data
        locale = await locales.of(refund.user_id)
        await push_or_sms(
            delivery,
            f"refund:{refund.refund_id}",
            "payment-refunded",
            domain.refund_push(refund, links, texts, locale),
            domain.refund_sms(refund, texts, locale),
        )

    async def email_failed(delivery: Delivery[PaymentFailed]) -> None:
        failed, about = delivery.data, f"payment:{delivery.data.payment_id}"
        await deliveries.email_to(
            key(delivery, about, "email", failed.user_id, "payment-failed"),
            await store.recipient(pool, failed.user_id),
            template_id=templates.payment_failed,
            data=lambda recipient: domain.payment_failed_data(failed, recipient, links),
            subject="Your payment did not go through",
        )

    async def email_refunded(delivery: Delivery[PaymentRefunded]) -> None:
        refund, about = delivery.data, f"refund:{delivery.data.refund_id}"
        await deliveries.email_to(
            key(delivery, about, "email", refund.user_id, "payment-refunded"),
            await store.recipient(pool, refund.user_id),
            template_id=templates.payment_refunded,
            data=lambda recipient: domain.refund_data(refund, recipient, links),
            subject="Your refund is on its way",
        )

    return [
        Handler("push-payment-failed", (PaymentFailed,), push_failed, inbox=False),
        Handler("email-payment-failed", (PaymentFailed,), email_failed, inbox=False),
        Handler("push-payment-refunded", (PaymentRefunded,), push_refunded, inbox=False),
        Handler("email-payment-refunded", (PaymentRefunded,), email_refunded, inbox=False),
    ]
