"""Composition root: the wallet's pool, ledger, routes and consumers, built from settings."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from rtmn_shared.events.consumer import Handler
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.service import Service, open_pool
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from wallet import api, handlers
from wallet.ledger import Ledger
from wallet.settings import WalletSettings

INFO = SERVICES["wallet"]


async def build_app(settings: WalletSettings, stack: AsyncExitStack) -> web.Application:
    pool = await open_pool(INFO, settings, stack)
    return create_app(
        service=INFO.name,
        routes=api.build(pool),
        verifier=TokenVerifier.from_settings(settings),
        readiness=Readiness(pool=pool, amqp_url=str(settings.amqp_url)),
        max_body_bytes=settings.max_body_bytes,
    )


async def build_handlers(settings: WalletSettings, stack: AsyncExitStack) -> Sequence[Handler]:
    # The consumer runner owns the pool the handlers work in; the ledger needs none of its own.
    del stack
    return handlers.build_handlers(Ledger(settings.earning_rule(), Outbox(f"rtmn/{INFO.name}")))


SERVICE = Service(
    name=INFO.name,
    settings=WalletSettings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
    build_handlers=build_handlers,
)
