"""Composition root: Redis, the outbox's pool, the SMS chain, the signer, the routes."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from otp.api import build_routes
from otp.deliveries import DeliveryStore
from otp.domain import Hasher, sms_body
from otp.flows import SENDS, OtpFlows
from otp.providers import SmsSender
from otp.providers.fallback import FallbackSender
from otp.providers.msg91 import Msg91Sender
from otp.providers.sandbox import SandboxSender
from otp.providers.twilio import TwilioSender, WhatsApp
from otp.pumping import PrefixGuard, PumpingRules
from otp.receipts import twilio_callback_url
from otp.relay import Relay, plan
from otp.settings import OtpSettings
from otp.store import CodeStore, Rules
from otp.tokens import TokenSigner
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.service import Service, open_pool, open_redis, open_unit_of_work
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier

INFO = SERVICES["otp"]


async def build_chain(settings: OtpSettings, stack: AsyncExitStack) -> list[SmsSender]:
    """Twilio first, MSG91 as its fallback; empty when neither is configured."""
    chain: list[SmsSender] = []
    if settings.twilio_live:
        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        twilio = TwilioSender(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_phone_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            timeout_s=settings.twilio_timeout_s,
            base_url=settings.twilio_base_url,
            whatsapp=(
                WhatsApp(settings.twilio_whatsapp_from, settings.twilio_whatsapp_content_sid)
                if settings.twilio_whatsapp_from and settings.twilio_whatsapp_content_sid
                else None
            ),
            voice_from=settings.twilio_voice_from,
            app_name=settings.otp_app_name,
            status_callback=(
                twilio_callback_url(settings.otp_public_url) if settings.otp_public_url else None
            ),
        )
        stack.push_async_callback(twilio.close)
        chain.append(twilio)
    if settings.msg91_live:
        assert settings.msg91_auth_key
        assert settings.msg91_flow_id
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        chain.append(
            Msg91Sender(
                session,
                auth_key=settings.msg91_auth_key.get_secret_value(),
                flow_id=settings.msg91_flow_id,
                sender_id=settings.msg91_sender_id,
                code_variable=settings.msg91_code_variable,
                timeout_s=settings.msg91_timeout_s,
                base_url=settings.msg91_base_url,
            )
        )
    return chain


def build_relay(
    settings: OtpSettings, chain: list[SmsSender], redis: Redis, hasher_key: bytes
) -> Relay | None:
    """Fallback on silence, when some provider can report deliveries back to us."""
    if not chain or not (settings.otp_public_url or settings.otp_msg91_report_key):
        return None
    minutes = max(1, settings.otp_code_ttl_s // 60)

    def body(code: str) -> str:
        return sms_body(code, app_name=settings.otp_app_name, minutes=minutes,
                        app_hash=settings.otp_android_app_hash)  # fmt: skip

    deliveries = DeliveryStore(redis, hasher_key)
    return Relay(plan(chain), deliveries, body, settings.otp_code_ttl_s * 1000)


async def build_app(
    settings: OtpSettings, stack: AsyncExitStack, *, sender: SmsSender | None = None
) -> web.Application:
    """`sender` replaces the configured chain (benchmarks); the service itself never passes it."""
    redis = await open_redis(settings, stack)
    pool = await open_pool(INFO, settings, stack)
    providers = {"sms": "sandbox"}
    relay = None
    if sender is None:
        chain = await build_chain(settings, stack)
        if chain:
            sender, providers = FallbackSender(chain), {s.name: "live" for s in chain}
            relay = build_relay(
                settings, chain, redis, settings.otp_hash_key.get_secret_value().encode()
            )
        else:
            sender = SandboxSender(log_codes=settings.otp_sandbox_log_codes)
    try:
        signer = TokenSigner(
            settings.otp_signing_key.get_secret_value(),
            issuer=settings.otp_token_issuer,
            ttl_s=settings.otp_token_ttl_s,
            public_pem=settings.otp_signing_public_key,
        )
    except (ValueError, TypeError) as error:
        raise SystemExit(f"otp: signing key: {error}") from None
    if settings.otp_token_issuer == settings.jwt_issuer:
        # A verification token has no audience either, but one check is not enough here.
        raise SystemExit("OTP_TOKEN_ISSUER must not be JWT_ISSUER")
    if settings.jwt_public_key is not None and signer.same_key_as(settings.jwt_public_key):
        # Every service would then take a phone-verification token as a login bearer token.
        raise SystemExit("OTP_SIGNING_KEY must not be the key pair of JWT_PUBLIC_KEY")
    rules = Rules(
        code_ttl_ms=settings.otp_code_ttl_s * 1000,
        cooldown_ms=settings.otp_cooldown_s * 1000,
        max_attempts=settings.otp_max_attempts,
        max_wrong_per_code=settings.otp_max_wrong_per_code,
        hourly_cap=settings.otp_hourly_cap,
        daily_cap=settings.otp_daily_cap,
        ip_hourly_cap=settings.otp_ip_hourly_cap,
        backoff_after=settings.otp_backoff_after,
        backoff_max_ms=settings.otp_backoff_max_s * 1000,
    )
    # OtpSmsRefusedByEveryProvider watches increase() of these: a series born at 1 has nothing
    # to grow from, so each live provider's count exists at 0 before the first refusal.
    for name, mode in providers.items():
        if mode == "live":
            SENDS.labels("unavailable", name)
    flows = OtpFlows(
        store=CodeStore(redis, rules),
        hasher=Hasher(settings.otp_hash_key.get_secret_value().encode()),
        sender=sender,
        signer=signer,
        unit=open_unit_of_work(INFO, settings, pool, stack),
        outbox=Outbox(f"rtmn/{INFO.name}"),
        prefixes=PrefixGuard(
            redis,
            PumpingRules(
                floor=settings.otp_pumping_floor,
                min_sends=settings.otp_pumping_min_sends,
                window_ms=settings.otp_pumping_window_s * 1000,
            ),
        ),
        app_name=settings.otp_app_name,
        app_hash=settings.otp_android_app_hash,
        prefix_digits=settings.otp_pumping_prefix_digits,
        relay=relay,
    )
    return create_app(
        service=INFO.name,
        routes=build_routes(flows, signer, settings),
        verifier=TokenVerifier.from_settings(settings),
        readiness=Readiness(
            pool=pool, redis=redis, amqp_url=str(settings.amqp_url), providers=providers
        ),
        max_body_bytes=settings.max_body_bytes,
    )


SERVICE = Service(
    "otp",
    OtpSettings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
)
