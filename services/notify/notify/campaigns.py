"""notification.requested: sent to a few users at once, or split into batches on notify's own
queue when it is a campaign; each user's channels as the request planned them (plans.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import get_args

from notify import domain, plans, store
from notify.consent import Category, UnsubscribeLinks
from notify.delivery import Deliveries
from notify.domain import SOURCE, Templates
from notify.providers import PushMessage
from notify.store import Consent, DeliveryKey
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import NotificationRequested
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import Outbox, OutboxRow
from rtmn_shared.events.outcomes import Retry

CAMPAIGN_ROUTING_KEY = "notify.campaign-batch"


@dataclass(frozen=True)
class Campaigns:
    threshold: int  # more users than this and a request is a campaign
    batch_size: int
    concurrency: int = 16


def build_campaign_handlers(
    pool: Pool,
    deliveries: Deliveries,
    *,
    templates: Templates,
    campaigns: Campaigns,
    unsubscribe: UnsubscribeLinks,
) -> list[Handler]:
    campaign_queue = Outbox(SOURCE)  # batches go out under notify's own routing key

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
        # Promotional mail carries the one-click unsubscribe of its category.
        await deliveries.email_to(
            requested_key(command, event_id, "email", user_id),
            await store.recipient(pool, user_id),
            template_id=templates.resolve(command.email_template),
            data=lambda recipient: domain.requested_email_data(command, recipient),
            subject=command.title,
            consent=(consent := requested_consent(command, user_id)),
            headers=unsubscribe.headers_for(user_id, consent.category),
        )

    return [
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
