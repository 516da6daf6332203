"""notify's consumers, one queue per channel and purpose, so an email outage never delays push.

Every sending handler runs with inbox=False: the delivery log is its idempotency record, and it
calls providers without holding a transaction open.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import get_args

from notify import domain, plans, store
from notify.consent import Category, UnsubscribeLinks
from notify.delivery import Deliveries, Unsendable
from notify.domain import Links
from notify.email_facts import record_credit
from notify.providers import PushMessage
from notify.store import Consent, DeliveryKey
from notify.templates import TextTemplates
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import (
    NotificationRequested,
    PaymentSuccess,
    UserRegistered,
    WalletCredited,
)
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import Outbox, OutboxRow
from rtmn_shared.events.outcomes import Retry

CAMPAIGN_ROUTING_KEY = "notify.campaign-batch"
SOURCE = "rtmn/notify"


@dataclass(frozen=True)
class Templates:
    """SendGrid dynamic template ids."""

    welcome: str
    order_confirmation: str

    def resolve(self, name: str) -> str:
        """A request may name one of ours or give a SendGrid dynamic template id itself."""
        known = {"welcome": self.welcome, "order-confirmation": self.order_confirmation}
        return known.get(name, name)


@dataclass(frozen=True)
class Campaigns:
    threshold: int  # more users than this and a request is a campaign
    batch_size: int
    concurrency: int = 16


def key(delivery: Delivery, source: str, channel: str, user_id: str, template: str) -> DeliveryKey:
    """`source` is what the message is about (a payment, a ledger entry, a user), not the
    event's id: a producer that emits the same fact twice still gets one message out."""
    return DeliveryKey(source, delivery.event.id, channel, user_id, template)


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
    campaign_queue = Outbox(SOURCE)  # batches go out under notify's own routing key

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
        data = domain.order_confirmation_data(
            payment, recipient or domain.Recipient(payment.user_id, None, None), links, facts
        )
        await deliveries.email(
            key(
                delivery,
                f"payment:{payment.payment_id}",
                "email",
                payment.user_id,
                "order-confirmation",
            ),
            to=recipient.email if recipient else None,
            template_id=templates.order_confirmation,
            data=data,
            subject=f"Order #{payment.order_number} confirmed",
            unsendable=None if recipient else Unsendable("failed", "unknown recipient"),
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

    async def send_requested(delivery: Delivery[NotificationRequested]) -> None:
        command = delivery.data
        if len(command.user_ids) > campaigns.threshold:
            await split_campaign(command)
        else:
            await send_to_users(delivery.event, command)

    async def send_campaign_batch(delivery: Delivery[NotificationRequested]) -> None:
        await send_to_users(delivery.event, delivery.data)

    async def split_campaign(command: NotificationRequested) -> None:
        # Once per request id: each batch becomes its own message on the campaign queue.
        parts = domain.batches(list(dict.fromkeys(command.user_ids)), campaigns.batch_size)
        async with pool.acquire() as conn, conn.transaction():
            if not await store.record_campaign(
                conn, command.request_id, len(parts), len(command.user_ids)
            ):
                return
            for part in parts:
                batch = command.model_copy(update={"user_ids": part})
                await campaign_queue.add(conn, batch, routing_key=CAMPAIGN_ROUTING_KEY)

    async def send_to_users(event: CloudEvent, command: NotificationRequested) -> None:
        # Keyed by the request id, so a repeated command (any event id) sends nothing new.
        message = domain.requested_push(command)
        limit = asyncio.Semaphore(campaigns.concurrency)

        async def one(job: Awaitable[object]) -> None:
            async with limit:
                await job

        jobs: list[Awaitable[object]] = []
        for user_id in dict.fromkeys(command.user_ids):
            jobs.append(send_plan(deliveries, event.id, command, user_id, message))
            if command.email_template:
                jobs.append(send_requested_email(event.id, command, user_id))
        outcomes = await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)
        _raise_first(outcomes)

    async def send_requested_email(
        event_id: uuid.UUID, command: NotificationRequested, user_id: str
    ) -> None:
        assert command.email_template is not None
        recipient = await store.recipient(pool, user_id)
        # Promotional mail carries the one-click unsubscribe of its category.
        await deliveries.email(
            requested_key(command, event_id, "email", user_id),
            to=recipient.email if recipient else None,
            template_id=templates.resolve(command.email_template),
            data=domain.requested_email_data(
                command, recipient or domain.Recipient(user_id, None, None)
            ),
            subject=command.title,
            unsendable=None if recipient else Unsendable("failed", "unknown recipient"),
            consent=(consent := requested_consent(command, user_id)),
            headers=unsubscribe.headers_for(user_id, consent.category),
        )

    return [
        Handler("recipients", (UserRegistered,), recipients),
        Handler("email-welcome", (UserRegistered,), email_welcome, inbox=False),
        Handler(
            "email-order-confirmation", (PaymentSuccess,), email_order_confirmation, inbox=False
        ),
        Handler("push-payment-success", (PaymentSuccess,), push_payment_success, inbox=False),
        Handler("push-wallet-credited", (WalletCredited,), push_wallet_credited, inbox=False),
        Handler("send-requested", (NotificationRequested,), send_requested, inbox=False),
        Handler(
            "send-campaign",
            (NotificationRequested,),
            send_campaign_batch,
            inbox=False,
            routing_keys=(CAMPAIGN_ROUTING_KEY,),
            prefetch=4,
        ),
    ]


async def send_plan(
    deliveries: Deliveries,
    event_id: uuid.UUID,
    command: NotificationRequested,
    user_id: str,
    push: PushMessage,
) -> None:
    """The request's channels for one user: each of them, or with `fallback` the first that
    reaches the user (plans.py)."""
    consent = requested_consent(command, user_id)

    async def on(channel: str) -> str:
        key = requested_key(command, event_id, channel, user_id)
        if channel == "push":
            return await deliveries.push(key, push, consent)
        return await deliveries.text(key, plans.requested_text(command), consent)

    channels = plans.channels_of(command)
    if not command.fallback:
        _raise_first(await asyncio.gather(*map(on, channels), return_exceptions=True))
        return
    for channel in channels:
        if not plans.falls_through(await on(channel)):
            return


def requested_key(
    command: NotificationRequested, event_id: uuid.UUID, channel: str, user_id: str
) -> DeliveryKey:
    template = (
        command.email_template if channel == "email" and command.email_template else "request"
    )
    return DeliveryKey(f"request:{command.request_id}", event_id, channel, user_id, template)


def requested_consent(command: NotificationRequested, user_id: str) -> Consent:
    """The request's category, and the command again for this one user as a campaign batch,
    should quiet hours hold its send back (the same request id finds the same deliveries)."""
    again = command.model_copy(update={"user_ids": [user_id]})
    event = CloudEvent.of(again, source=SOURCE)
    later = OutboxRow.of(event, routing_key=CAMPAIGN_ROUTING_KEY)
    # A category we do not know gets the strictest treatment, never none at all.
    known = command.category in get_args(Category)
    return Consent(command.category if known else "promotional", later=later)


def _raise_first(outcomes: Sequence[object]) -> None:
    """Retry if any user's send must be retried (those already sent are skipped next time)."""
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if not errors:
        return
    fatal = [e for e in errors if not isinstance(e, Retry)]
    if fatal:
        raise fatal[0]
    raise Retry(f"{len(errors)} send(s) to retry: {errors[0]}")
