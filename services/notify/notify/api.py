"""notify's HTTP API: the caller's devices and notifications, send-on-request, SendGrid events."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from notify import consent_store, store
from notify.consent import Category, UnsubscribeLinks
from notify.consent_api import add_consent_routes
from notify.domain import PUSH_TEMPLATES, EmailEvent, Links, PushTemplate, statuses_before
from notify.inbox_api import add_inbox_routes
from notify.providers.sendgrid.webhooks import (
    SENDGRID_MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadBatch,
    EventWebhookVerifier,
    parse_batch,
)
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import NotificationRequested, RequestChannel
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.auth import SERVICE
from rtmn_shared.web.bodies import read_capped
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import USER, Call, Routes, json_response

log = logging.getLogger(__name__)

SEND = "notify:send"  # an operator or a back office sending to users
# How recent a sign-in must be to take over a device token another user registered.
DEVICE_MOVE_WITHIN_S = 600
DEFAULT_LINKS = Links(app_url="http://localhost:3000", deep_link_base="rezapp://")


class DeviceIn(BaseModel):
    token: str = Field(min_length=1, max_length=4096)
    platform: Literal["android", "ios", "web"]


class DeviceOut(BaseModel):
    token: str
    platform: str
    active: bool


class NotificationsQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    before: AwareDatetime | None = None


class NotificationOut(BaseModel):
    id: uuid.UUID
    channel: str
    template: str
    title: str | None
    body: str | None
    status: str
    provider: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class NotificationsOut(BaseModel):
    items: list[NotificationOut]


class SendData(BaseModel):
    """What the app acts on when the push is tapped (the seed's flash-sale example); more keys
    may ride along, strings only, as FCM's data payload requires."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    type: str = Field(min_length=1, max_length=100)
    deepLink: str | None = Field(default=None, max_length=2000)
    action: str | None = Field(default=None, max_length=200)


class SendIn(BaseModel):
    # No free title or message: `template` names the words (domain.PUSH_TEMPLATES).
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200, description="idempotency key")
    user_ids: list[str] = Field(min_length=1, max_length=100_000)
    template: PushTemplate = Field(description="names the push's title and text")
    image: HttpUrl | None = None
    data: SendData
    email_template: str | None = Field(default=None, max_length=200)
    category: Category = Field(
        default="promotional",
        description="what the users consented to; promotional waits out quiet hours",
    )
    channels: list[RequestChannel] = Field(
        default_factory=lambda: list[RequestChannel](["push"]),
        min_length=1,
        max_length=3,
        description="push, sms, whatsapp: each of them, or with `fallback` the first that "
        "reaches the user, in this order",
    )
    fallback: bool = Field(
        default=False,
        description="try the channels in order: the next only if the one before did not reach "
        "the user (no live device, turned off, refused)",
    )


class SendOut(BaseModel):
    request_id: str
    event_id: uuid.UUID
    duplicate: bool


def build_routes(
    unit: UnitOfWork,
    outbox: Outbox,
    verifier: EventWebhookVerifier,
    links: UnsubscribeLinks,
    device_move_within_s: int = DEVICE_MOVE_WITHIN_S,
    app_links: Links = DEFAULT_LINKS,
) -> Routes:
    pool = unit.pool
    routes = Routes()
    add_consent_routes(routes, unit, links)
    add_inbox_routes(routes, pool)

    @routes.put("/api/notify/devices", body=DeviceIn, response=DeviceOut, auth=USER)
    async def register_device(call: Call) -> web.StreamResponse:
        """Register an FCM token; another user's moves only after a recent sign-in, else 409."""
        device = await call.body(DeviceIn)
        signed_in = call.user.signed_in_at
        may_move = signed_in is not None and time.time() - signed_in <= device_move_within_s
        user_id = call.user.user_id
        if not await store.register_device(
            pool, user_id, device.token, device.platform, may_move=may_move
        ):
            raise Problem(
                409,
                "this device is registered to another account; sign in again on it to move it",
            )
        return json_response(DeviceOut(token=device.token, platform=device.platform, active=True))

    @routes.delete("/api/notify/devices/{token}", status=204, auth=USER)
    async def remove_device(call: Call) -> web.StreamResponse:
        """Forget one of the caller's FCM tokens."""
        if not await store.remove_device(pool, call.user.user_id, call.path("token")):
            raise Problem(404, "no such device token for this user")
        return web.Response(status=204)

    @routes.get(
        "/api/notify/notifications",
        query=NotificationsQuery,
        response=NotificationsOut,
        auth=USER,
    )
    async def list_notifications(call: Call) -> web.StreamResponse:
        """The caller's notifications, newest first, with their delivery status."""
        query = call.query(NotificationsQuery)
        rows = await store.notifications(pool, call.user.user_id, query.limit, query.before)
        items = [
            NotificationOut.model_validate({**r, "last_error": _told(r["status"], r["last_error"])})
            for r in rows
        ]
        return json_response(NotificationsOut(items=items))

    @routes.post("/api/notify/send", body=SendIn, response=SendOut, status=202,
                 auth=(SEND, SERVICE))  # fmt: skip
    async def send(call: Call) -> web.StreamResponse:
        """Queue a notification to users; a repeated request_id sends nothing new."""
        body = await call.body(SendIn)
        command = _command(body, app_links)
        try:
            async with unit.transaction() as conn:
                event = await outbox.add(conn, command)
                earlier = await store.record_send_request(
                    conn, body.request_id, event.id, call.user.user_id, len(body.user_ids)
                )
                if earlier is not None:
                    raise _Duplicate(earlier)
        except _Duplicate as duplicate:
            # The same request again: its new command was rolled back; answer with the first.
            first = SendOut(request_id=body.request_id, event_id=duplicate.event_id, duplicate=True)
            return json_response(first, status=200)
        out = SendOut(request_id=body.request_id, event_id=event.id, duplicate=False)
        return json_response(out, status=202)

    @routes.post("/api/webhooks/sendgrid", status=204)
    async def sendgrid_events(call: Call) -> web.StreamResponse:
        """SendGrid's signed Event Webhook: moves email statuses forward, never back."""
        raw = await read_capped(call.request, SENDGRID_MAX_BODY_BYTES)
        headers = call.request.headers
        if not verifier.verify(raw, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)):
            raise Problem(400, "the event webhook signature is missing or does not verify")
        try:
            batch = parse_batch(raw)
        except BadBatch as error:
            raise Problem(400, str(error)) from None
        moved = 0
        for event in batch.events:
            moved += await _apply_event(pool, event)
        log.info("sendgrid events: %d received, %d status change(s)", batch.received, moved)
        return web.Response(status=204)

    return routes


# The delivery log keeps the provider's words for operators; a user is told only what happened.
_OUR_REASONS = frozenset(
    {
        "no active device",
        "no email address on file",
        "unknown recipient",
        "no phone number on file",
        "no usable phone number on file",
    }
)


def _told(status: str, last_error: str | None) -> str | None:
    if last_error is None or last_error in _OUR_REASONS:
        return last_error
    if status == "failed":
        return "the provider did not accept it"
    return "an attempt did not go through"


def _command(body: SendIn, links: Links) -> NotificationRequested:
    """The command a send asks for: our words for its template, a link only into our apps."""
    if body.data.deepLink is not None and not links.ours(body.data.deepLink):
        raise Problem(
            422,
            "the request has invalid fields",
            errors=[{"field": "data.deepLink", "message": "must open our app or web app"}],
        )
    title, message = PUSH_TEMPLATES[body.template]
    return NotificationRequested(
        request_id=body.request_id,
        user_ids=body.user_ids,
        title=title,
        message=message,
        image=body.image,
        data=body.data.model_dump(exclude_none=True),
        email_template=body.email_template,
        category=body.category,
        channels=body.channels,
        fallback=body.fallback,
    )


class _Duplicate(Exception):
    def __init__(self, event_id: uuid.UUID) -> None:
        self.event_id = event_id


async def _apply_event(pool: Pool, event: EmailEvent) -> int:
    await _apply_consent(pool, event)
    if event.status is None:
        return 0
    moved = await store.advance_email(
        pool,
        delivery_id=event.delivery_id,
        provider_message_id=event.message_id,
        status=event.status,
        allowed_from=statuses_before(event.status),
    )
    return int(moved)


async def _apply_consent(pool: Pool, event: EmailEvent) -> None:
    """The user asked us to stop (that category's email goes off), or the address cannot take
    mail (it is suppressed until the user's address changes)."""
    if event.opt_out:
        kind = event.kind
        if await consent_store.email_off_for_delivery(
            pool, event.delivery_id, event.message_id, kind
        ):
            log.info("sendgrid %s: email turned off for that category", kind)
        return
    if event.suppression is not None and event.email is not None:
        await consent_store.suppress_address(pool, event.email, event.suppression)
