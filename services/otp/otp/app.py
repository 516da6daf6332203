"""Composition root: Redis, the outbox's pool, the SMS chain, the signer, the routes."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from aiohttp import web

from otp.api import build_routes
from otp.domain import Hasher
from otp.flows import SENDS, OtpFlows
from otp.providers import SmsSender
from otp.providers.fallback import FallbackSender
from otp.providers.msg91 import Msg91Sender
from otp.providers.sandbox import SandboxSender
from otp.providers.twilio import TwilioSender
from otp.settings import OtpSettings
from otp.store import CodeStore, Rules
from otp.tokens import TokenSigner
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.service import Service, open_pool, open_redis, open_unit_of_work
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier

INFO = SERVICES["otp"]


async def build_sender(
    settings: OtpSettings, stack: AsyncExitStack
) -> tuple[SmsSender, dict[str, str]]:
    """Twilio first, MSG91 as its fallback; the sandbox only when neither is configured."""
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
    if not chain:
        return SandboxSender(log_codes=settings.otp_sandbox_log_codes), {"sms": "sandbox"}
    return FallbackSender(chain), {sender.name: "live" for sender in chain}


async def build_app(
    settings: OtpSettings, stack: AsyncExitStack, *, sender: SmsSender | None = None
) -> web.Application:
    """`sender` replaces the configured chain (benchmarks); the service itself never passes it."""
    redis = await open_redis(settings, stack)
    pool = await open_pool(INFO, settings, stack)
    providers = {"sms": "sandbox"}
    if sender is None:
        sender, providers = await build_sender(settings, stack)
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
        app_name=settings.otp_app_name,
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
