"""Composition root: sinks from settings, a batcher per sink, the track route and the handlers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from aiohttp import web

from analytics import handlers
from analytics.api import build_routes
from analytics.batcher import Batcher
from analytics.providers.base import AnalyticsSink, RetryPolicy
from analytics.providers.ga4 import Ga4Sink
from analytics.providers.mixpanel import MixpanelSink
from analytics.providers.sandbox import SandboxSink
from analytics.retired import fold_until_done
from analytics.settings import AnalyticsSettings
from rtmn_shared.events.consumer import Handler
from rtmn_shared.events.publishers import Logins
from rtmn_shared.service import Service, background, open_redis
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)


def mixpanel_sink(settings: AnalyticsSettings, session: aiohttp.ClientSession) -> AnalyticsSink:
    if not settings.mixpanel_live:
        return SandboxSink("mixpanel")
    if settings.mixpanel_api_secret is not None:
        # A project secret is the Basic username with an empty password.
        authorization = aiohttp.encode_basic_auth(settings.mixpanel_api_secret.get_secret_value())
        project_id = settings.mixpanel_project_id
    else:
        assert settings.mixpanel_service_account_username is not None
        assert settings.mixpanel_service_account_secret is not None
        authorization = aiohttp.encode_basic_auth(
            settings.mixpanel_service_account_username,
            settings.mixpanel_service_account_secret.get_secret_value(),
        )
        project_id = settings.mixpanel_project_id
    token = settings.mixpanel_project_token
    return MixpanelSink(
        session,
        api_url=str(settings.mixpanel_api_url),
        authorization=authorization,
        project_id=project_id,
        project_token=token.get_secret_value() if token else None,
        policy=_policy(settings),
        timeout=_timeout(settings),
        max_events=settings.mixpanel_batch_events,
    )


def ga4_sink(settings: AnalyticsSettings, session: aiohttp.ClientSession) -> AnalyticsSink:
    if not settings.ga4_live:
        return SandboxSink("ga4")
    assert settings.ga4_measurement_id is not None
    assert settings.ga4_api_secret is not None
    return Ga4Sink(
        session,
        base_url=str(settings.ga4_base_url),
        measurement_id=settings.ga4_measurement_id,
        api_secret=settings.ga4_api_secret.get_secret_value(),
        system_client_id=settings.ga4_system_client_id,
        policy=_policy(settings),
        timeout=_timeout(settings),
        validate=settings.ga4_validate,
    )


def _policy(settings: AnalyticsSettings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.analytics_send_attempts,
        first_seconds=settings.analytics_backoff_first_seconds,
        cap_seconds=settings.analytics_backoff_cap_seconds,
    )


def _timeout(settings: AnalyticsSettings) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=settings.analytics_http_timeout_seconds, connect=5)


async def open_batchers(
    settings: AnalyticsSettings, stack: AsyncExitStack, *, max_pending: int | None
) -> list[Batcher]:
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    sizes = {"mixpanel": settings.mixpanel_batch_events, "ga4": settings.ga4_batch_events}
    batchers = []
    for sink in (mixpanel_sink(settings, session), ga4_sink(settings, session)):
        if sink.mode == "sandbox":
            log.warning("%s has no credentials: events go to the sandbox sink", sink.name)
        batcher = Batcher(
            sink,
            max_events=sizes[sink.name],
            max_delay_seconds=settings.analytics_flush_seconds,
            max_pending=max_pending,
        )
        batcher.start()
        # Closed before the session (the stack unwinds in reverse), so sends in flight finish.
        stack.push_async_callback(batcher.close)
        batchers.append(batcher)
    return batchers


async def build_app(settings: AnalyticsSettings, stack: AsyncExitStack) -> web.Application:
    redis = await open_redis(settings, stack)
    # Client events go straight to this process's batchers, not through the broker (see api.py).
    batchers = await open_batchers(settings, stack, max_pending=settings.analytics_track_buffer)
    routes = build_routes(
        batchers, RateLimiter(redis, "analytics"), settings.analytics_track_per_minute
    )
    return create_app(
        service="analytics",
        routes=routes,
        verifier=TokenVerifier.from_settings(settings),
        # Nothing of ours lives in PostgreSQL; the broker feeds the consumers.
        readiness=Readiness(
            redis=redis,
            amqp_url=str(settings.amqp_url),
            providers={b.sink.name: b.sink.mode for b in batchers},
        ),
        max_body_bytes=settings.max_body_bytes,
    )


async def build_handlers(settings: AnalyticsSettings, stack: AsyncExitStack) -> Sequence[Handler]:
    # No buffer cap here: the consumer's prefetch bounds what waits in a batcher.
    batchers = await open_batchers(settings, stack, max_pending=None)
    [handler] = handlers.build_handlers(batchers, settings.analytics_prefetch)
    logins = Logins(settings.service_user_prefix)
    background(fold_until_done(str(settings.amqp_url), handler, logins=logins), stack)
    return [handler]


SERVICE = Service(
    "analytics",
    AnalyticsSettings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
    build_handlers=build_handlers,
)
