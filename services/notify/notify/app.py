"""notify's composition root: settings in, the HTTP app and the event handlers out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from pydantic import SecretStr

from notify import consent_store, handlers, store, templates
from notify.api import build_routes
from notify.campaigns import Campaigns
from notify.consent import UnsubscribeLinks
from notify.delivery import Deliveries
from notify.domain import SOURCE, Links, Templates
from notify.providers import EmailSender, Mode, PushSender, TextSender
from notify.providers.fallback import FallbackTextSender
from notify.providers.fcm import FcmPushSender
from notify.providers.fcm_auth import credentials_of
from notify.providers.msg91 import Msg91TextSender, Msg91WhatsApp
from notify.providers.sandbox import SandboxEmailSender, SandboxPushSender, SandboxTextSender
from notify.providers.sendgrid.client import SendGridEmailSender
from notify.providers.sendgrid.webhooks import EventWebhookVerifier, WebhookKeyError
from notify.providers.twilio import TwilioTextSender, TwilioWhatsApp
from notify.settings import Settings
from rtmn_shared.db import Pool
from rtmn_shared.events.consumer import Handler
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.service import Service, background, open_pool, open_unit_of_work
from rtmn_shared.settings import SettingsError
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier

INFO = SERVICES["notify"]
log = logging.getLogger(__name__)


def links_of(settings: Settings) -> Links:
    return Links(app_url=str(settings.app_url), deep_link_base=settings.deep_link_base)


def provider_modes(settings: Settings) -> dict[str, Mode]:
    """Email and push always (live or sandbox); the SMS and WhatsApp providers once configured
    (neither: their sandbox records what it would have sent)."""
    modes: dict[str, Mode] = {
        "sendgrid": "live" if settings.sendgrid_api_key else "sandbox",
        "fcm": "live" if _fcm_configured(settings) else "sandbox",
    }
    if _msg91_configured(settings):
        modes["msg91"] = "live"
    if _twilio_configured(settings):
        modes["twilio"] = "live"
    return modes


def _msg91_configured(settings: Settings) -> bool:
    whatsapp = settings.notify_msg91_whatsapp_number and settings.notify_msg91_whatsapp_template
    return bool(settings.msg91_auth_key and (settings.notify_msg91_flow_id or whatsapp))


def _twilio_configured(settings: Settings) -> bool:
    sender = settings.twilio_phone_number or settings.twilio_messaging_service_sid
    whatsapp = settings.twilio_whatsapp_from and settings.notify_twilio_whatsapp_content_sid
    return bool(settings.twilio_account_sid and settings.twilio_auth_token and (sender or whatsapp))


def _fcm_configured(settings: Settings) -> bool:
    service_account = settings.firebase_client_email and settings.firebase_private_key
    return bool(settings.firebase_project_id and (service_account or settings.fcm_access_token))


async def build_app(settings: Settings, stack: AsyncExitStack) -> web.Application:
    try:
        verifier = EventWebhookVerifier(
            settings.sendgrid_webhook_public_key,
            tolerance_seconds=settings.sendgrid_webhook_tolerance_seconds,
        )
    except WebhookKeyError as error:
        raise SettingsError(f"configuration error: {error}") from None
    pool = await open_pool(INFO, settings, stack)
    return create_app(
        service=INFO.name,
        routes=build_routes(
            open_unit_of_work(INFO, settings, pool, stack),
            Outbox(SOURCE),
            verifier,
            unsubscribe_links(settings),
            settings.device_move_within_seconds,
            links_of(settings),
        ),
        verifier=TokenVerifier.from_settings(settings),
        readiness=Readiness(
            pool=pool,
            amqp_url=str(settings.amqp_url),
            providers=dict(provider_modes(settings)),
        ),
        max_body_bytes=settings.max_body_bytes,
    )


def unsubscribe_links(settings: Settings) -> UnsubscribeLinks:
    secret = _secret(settings.unsubscribe_secret)
    return UnsubscribeLinks(secret.encode() if secret else None, str(settings.notify_public_url))


async def release_deferred(pool: Pool, every_seconds: float) -> None:
    """Sends held back by quiet hours go back on their queue once their window opens."""
    while True:
        try:
            moved = await consent_store.release_due(pool)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("deferred sends not released: %s", type(error).__name__)
        else:
            if moved:
                log.info("released %d send(s) held back by quiet hours", moved)
        await asyncio.sleep(every_seconds)


async def email_sender(settings: Settings, stack: AsyncExitStack) -> EmailSender:
    if settings.sendgrid_api_key is None:
        return SandboxEmailSender()
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    return SendGridEmailSender(
        session,
        api_key=settings.sendgrid_api_key.get_secret_value(),
        base_url=str(settings.sendgrid_api_url),
        from_email=settings.sendgrid_from_email,
        from_name=settings.sendgrid_from_name,
        timeout_seconds=settings.sendgrid_timeout_seconds,
    )


async def text_sender(settings: Settings, stack: AsyncExitStack) -> TextSender:
    """MSG91 first, Twilio as its fallback (whichever are configured), else the sandbox."""
    chain: list[TextSender] = []
    if _msg91_configured(settings):
        assert settings.msg91_auth_key is not None
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        number, template = (
            settings.notify_msg91_whatsapp_number,
            settings.notify_msg91_whatsapp_template,
        )
        chain.append(
            Msg91TextSender(
                session,
                auth_key=settings.msg91_auth_key.get_secret_value(),
                flow_id=settings.notify_msg91_flow_id,
                sender_id=settings.msg91_sender_id,
                text_variable=settings.notify_msg91_text_variable,
                timeout_seconds=settings.msg91_timeout_s,
                base_url=settings.msg91_base_url,
                whatsapp=Msg91WhatsApp(
                    number,
                    template,
                    settings.notify_msg91_whatsapp_language,
                    settings.notify_msg91_whatsapp_namespace,
                )
                if number and template
                else None,
            )
        )
    if _twilio_configured(settings):
        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        whatsapp_from = settings.twilio_whatsapp_from
        content_sid = settings.notify_twilio_whatsapp_content_sid
        # Built here, inside the running loop: the SDK's aiohttp session binds to it.
        twilio = TwilioTextSender(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_phone_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            timeout_seconds=settings.twilio_timeout_s,
            base_url=settings.twilio_base_url,
            whatsapp=TwilioWhatsApp(whatsapp_from, content_sid)
            if whatsapp_from and content_sid
            else None,
        )
        stack.push_async_callback(twilio.close)
        chain.append(twilio)
    return FallbackTextSender(chain) if chain else SandboxTextSender()


def push_sender(settings: Settings, stack: AsyncExitStack) -> PushSender:
    if not _fcm_configured(settings):
        return SandboxPushSender()
    assert settings.firebase_project_id is not None
    try:
        credential = credentials_of(
            project_id=settings.firebase_project_id,
            client_email=settings.firebase_client_email,
            private_key=_secret(settings.firebase_private_key),
            token_uri=str(settings.firebase_token_uri),
            access_token=_secret(settings.fcm_access_token),
        )
    except ValueError:
        raise SettingsError(
            "configuration error: FIREBASE_PRIVATE_KEY is not a service account's PEM key"
        ) from None
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    sender = FcmPushSender(
        session,
        credential,
        project_id=settings.firebase_project_id,
        url=settings.fcm_url,
        timeout_seconds=settings.fcm_timeout_seconds,
    )
    stack.push_async_callback(sender.aclose)
    return sender


async def build_handlers(settings: Settings, stack: AsyncExitStack) -> Sequence[Handler]:
    texts = templates.load(settings.notify_templates_dir)  # a bad template stops start-up first
    pool = await open_pool(INFO, settings, stack)
    deliveries = Deliveries(
        pool,
        email=await email_sender(settings, stack),
        push=push_sender(settings, stack),
        text=await text_sender(settings, stack),
        outbox=Outbox(SOURCE),
        lease_seconds=settings.delivery_lease_seconds,
    )
    background(release_deferred(pool, settings.deferred_sweep_seconds), stack)
    return handlers.build_handlers(
        pool,
        deliveries,
        templates=Templates(
            welcome=settings.sendgrid_template_welcome,
            order_confirmation=settings.sendgrid_template_order_confirmation,
            payment_failed=settings.sendgrid_template_payment_failed,
            payment_refunded=settings.sendgrid_template_payment_refunded,
        ),
        texts=texts,
        locales=store.Locales(pool),
        links=links_of(settings),
        campaigns=Campaigns(
            threshold=settings.campaign_threshold, batch_size=settings.campaign_batch_size
        ),
        unsubscribe=unsubscribe_links(settings),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else None


SERVICE = Service(
    name=INFO.name,
    settings=Settings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
    build_handlers=build_handlers,
)
