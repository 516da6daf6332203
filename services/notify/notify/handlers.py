"""notify's consumers, one queue per channel and purpose, so an email outage never delays push.

Every sending handler runs with inbox=False: the delivery log is its idempotency record, and it
calls providers without holding a transaction open. `build_handlers` gathers all of notify's:
those of user.registered, payment.success and wallet.credited here, the requested sends and
campaigns (campaigns.py), the failed and refunded payments (payment_notices.py), and the read
models for the emails (email_facts.py).
"""

from __future__ import annotations

from notify import domain, store
from notify.campaigns import Campaigns, build_campaign_handlers
from notify.consent import UnsubscribeLinks
from notify.delivery import Deliveries, key
from notify.domain import Links, Templates
from notify.email_facts import build_fact_handlers, record_credit
from notify.payment_notices import build_payment_notices
from notify.store import Consent
from notify.templates import TextTemplates
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess, UserRegistered, WalletCredited
from rtmn_shared.events.consumer import Delivery, Handler


def build_handlers(
    pool: Pool,
    deliveries: Deliveries,
    *,
    templates: Templates,
    texts: TextTemplates,
    locales: store.Locales,
    links: Links,
    campaigns: Campaigns,
    unsubscribe: UnsubscribeLinks,
) -> list[Handler]:
    async def recipients(delivery: Delivery[UserRegistered]) -> None:
        assert delivery.conn is not None
        user = delivery.data
        await locales.record(delivery.conn, user, delivery.event.time)

    async def email_welcome(delivery: Delivery[UserRegistered]) -> None:
        user = delivery.data
        await deliveries.email(
            key(delivery, f"user:{user.user_id}", "email", user.user_id, "welcome"),
            to=user.email,
            template_id=templates.welcome,
            data=domain.welcome_data(user, links, await store.coin_balance(pool, user.user_id)),
            subject="Welcome to REZ",
            consent=Consent("account"),
        )

    async def email_order_confirmation(delivery: Delivery[PaymentSuccess]) -> None:
        payment = delivery.data
        recipient, facts = await store.order_email(pool, payment)
        await deliveries.email_to(
            key(
                delivery,
                f"payment:{payment.payment_id}",
                "email",
                payment.user_id,
                "order-confirmation",
            ),
            recipient,
            template_id=templates.order_confirmation,
            data=lambda known: domain.order_confirmation_data(payment, known, links, facts),
            subject=f"Order #{payment.order_number} confirmed",
        )

    async def push_payment_success(delivery: Delivery[PaymentSuccess]) -> None:
        payment = delivery.data
        await deliveries.push(
            key(
                delivery,
                f"payment:{payment.payment_id}",
                "push",
                payment.user_id,
                "payment-success",
            ),
            domain.payment_push(payment, links, texts, await locales.of(payment.user_id)),
        )

    async def push_wallet_credited(delivery: Delivery[WalletCredited]) -> None:
        credit = delivery.data
        await record_credit(pool, credit, delivery.event.time)
        await deliveries.push(
            key(delivery, f"wallet:{credit.entry_id}", "push", credit.user_id, "wallet-credited"),
            domain.wallet_push(credit, links, texts, await locales.of(credit.user_id)),
            Consent("wallet"),
        )

    return [
        Handler("recipients", (UserRegistered,), recipients),
        Handler("email-welcome", (UserRegistered,), email_welcome, inbox=False),
        Handler(
            "email-order-confirmation", (PaymentSuccess,), email_order_confirmation, inbox=False
        ),
        Handler("push-payment-success", (PaymentSuccess,), push_payment_success, inbox=False),
        Handler("push-wallet-credited", (WalletCredited,), push_wallet_credited, inbox=False),
        *build_campaign_handlers(
            pool, deliveries, templates=templates, campaigns=campaigns, unsubscribe=unsubscribe
        ),
        *build_fact_handlers(),
        *build_payment_notices(
            pool, deliveries, templates=templates, texts=texts, locales=locales, links=links
        ),
    ]
