"""Composition root: settings → pool, Redis, gateways → routes; the consumers role:
its handler and its background loop, reconciliation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from aiohttp import web

from payments import handlers, webhooks
from payments.api import Deps, build_routes
from payments.batching import Batcher
from payments.inbound import Inbound
from payments.providers.gateway import (
    RAZORPAY_LIMITS,
    STRIPE_LIMITS,
    UPI_LIMITS,
    Gateways,
    PaymentGateway,
    UpiGateway,
)
from payments.providers.razorpay.client import RazorpayGateway
from payments.providers.razorpay.upi import RazorpayUpiGateway
from payments.providers.sandbox import SandboxGateway
from payments.providers.stripe.client import StripeGateway
from payments.providers.unconfigured import Unconfigured
from payments.reconcile import Reconciler
from payments.routing import Router
from payments.settings import Settings
from rtmn_shared.events.consumer import Handler
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.service import Service, background, open_pool, open_redis, open_unit_of_work
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.ratelimit import Limit, RateLimiter

log = logging.getLogger(__name__)
INFO = SERVICES["payments"]


async def build_gateways(settings: Settings, stack: AsyncExitStack) -> Gateways:
    razorpay: PaymentGateway
    upi: UpiGateway
    if settings.razorpay_key_id and settings.razorpay_key_secret:
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        razorpay = RazorpayGateway(
            session,
            settings.razorpay_key_id,
            settings.razorpay_key_secret.get_secret_value(),
            timeout=settings.gateway_timeout_seconds,
            base_url=settings.razorpay_api_base,
        )
        missing = upi_missing(settings)
        if missing is None:
            assert settings.upi_payee_name is not None
            upi = RazorpayUpiGateway(
                session,
                settings.razorpay_key_id,
                settings.razorpay_key_secret.get_secret_value(),
                timeout=settings.gateway_timeout_seconds,
                base_url=settings.razorpay_api_base,
                payee_name=settings.upi_payee_name,
                lifetime_seconds=settings.upi_qr_lifetime_seconds,
            )
        else:
            log.error("UPI payments are refused (503): %s", missing)
            upi = Unconfigured("upi", UPI_LIMITS, missing, razorpay)
    else:
        log.warning("RAZORPAY_KEY_ID/RAZORPAY_KEY_SECRET not set: Razorpay runs as a sandbox")
        razorpay = SandboxGateway("razorpay", RAZORPAY_LIMITS)
        upi = SandboxGateway("upi", UPI_LIMITS)
    if settings.upi_payee_vpa:
        log.warning("UPI_PAYEE_VPA is ignored: UPI is paid to a Razorpay QR code, never to a VPA")
    stripe: PaymentGateway
    if settings.stripe_secret_key:
        live = StripeGateway(
            settings.stripe_secret_key.get_secret_value(),
            timeout=settings.gateway_timeout_seconds,
            base_url=settings.stripe_api_base,
            manual_capture=settings.stripe_capture_method == "manual",
        )
        stack.push_async_callback(live.shutdown)
        stripe = live
    else:
        log.warning("STRIPE_SECRET_KEY not set: Stripe runs as a sandbox")
        stripe = SandboxGateway("stripe", STRIPE_LIMITS)
    return Gateways(razorpay, stripe, upi)


def upi_missing(settings: Settings) -> str | None:
    """What live UPI lacks: a name for its QR codes, and the secret of the webhook confirming
    them (without it every `qr_code.credited` is refused and payments wait for reconciliation)."""
    missing = [
        name
        for name, value in (
            ("UPI_PAYEE_NAME", settings.upi_payee_name),
            ("RAZORPAY_WEBHOOK_SECRET", settings.razorpay_webhook_secret),
        )
        if not value
    ]
    return f"{' and '.join(missing)} not set" if missing else None


async def open_unit(settings: Settings, stack: AsyncExitStack) -> UnitOfWork:
    """The pool, and the task that wakes the relay after commits that wrote events."""
    pool = await open_pool(INFO, settings, stack)
    return open_unit_of_work(INFO, settings, pool, stack)


async def build_app(settings: Settings, stack: AsyncExitStack) -> web.Application:
    unit = await open_unit(settings, stack)
    redis = await open_redis(settings, stack)
    gateways = await build_gateways(settings, stack)
    key_secret = settings.razorpay_key_secret
    batcher = Batcher(unit)
    stack.push_async_callback(batcher.close)
    deps = Deps(
        unit=unit,
        inbound=Inbound(unit, batcher),
        gateways=gateways,
        router=Router(
            settings.routing_table(),
            gateways,
            failures=settings.gateway_breaker_failures,
            reset_after=settings.gateway_breaker_reset_seconds,
        ),
        limiter=RateLimiter(redis, "payments"),
        create_limit=Limit(settings.create_limit_per_window, settings.create_limit_window_seconds),
        razorpay_key_secret=key_secret.get_secret_value() if key_secret else None,
        razorpay_secrets=webhooks.Secrets.of(
            settings.razorpay_webhook_secret,
            settings.razorpay_webhook_secret_previous,
            settings.razorpay_webhook_secret_previous_until,
        ),
        stripe_secrets=webhooks.Secrets.of(
            settings.stripe_webhook_secret,
            settings.stripe_webhook_secret_previous,
            settings.stripe_webhook_secret_previous_until,
        ),
        window=settings.dedupe_window(),
    )
    return create_app(
        service=INFO.name,
        routes=build_routes(deps),
        verifier=TokenVerifier.from_settings(settings),
        readiness=Readiness(
            pool=unit.pool, redis=redis, amqp_url=str(settings.amqp_url), providers=gateways.modes()
        ),
        max_body_bytes=settings.max_body_bytes,
    )


async def start_reconciliation(settings: Settings, stack: AsyncExitStack) -> None:
    """Reconciliation: a background loop of the consumers role, every
    RECONCILE_INTERVAL_SECONDS until the stack closes."""
    unit = await open_unit(settings, stack)
    gateways = await build_gateways(settings, stack)
    reconciler = Reconciler(
        unit,
        gateways,
        after_seconds=settings.reconcile_after_seconds,
        batch=settings.reconcile_batch,
        expire_after_seconds=settings.payment_expiry_seconds,
    )
    background(reconciler.run_forever(settings.reconcile_interval_seconds), stack)


async def build_consumers(settings: Settings, stack: AsyncExitStack) -> Sequence[Handler]:
    """The consumers role: reconciliation started beside it, and its one handler
    (`order.placed` into the orders table)."""
    await start_reconciliation(settings, stack)
    return handlers.build_handlers()


SERVICE = Service(
    name=INFO.name,
    settings=Settings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
    build_handlers=build_consumers,
)
