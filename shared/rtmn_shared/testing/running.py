"""A whole service inside the test process: migrated schema, HTTP app, relay and consumers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rtmn_shared import db
from rtmn_shared.events.consumer import ConsumerRunner, Handler
from rtmn_shared.events.inbox import Inbox
from rtmn_shared.events.publishers import Logins, login_of
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.service import Service, open_pool, open_unit_of_work, run_migrations
from rtmn_shared.settings import CommonSettings, service_logins
from rtmn_shared.testing.waiting import cancel_all, wait_for

S = TypeVar("S", bound=CommonSettings)


@dataclass
class RunningService:
    settings: CommonSettings
    app: web.Application
    client: TestClient[web.Request, web.Application]
    pool: db.Pool
    handlers: Sequence[Handler]
    consumers: ConsumerRunner | None


@asynccontextmanager
async def running(
    service: Service[Any],
    settings: CommonSettings | None = None,
    *,
    relay: bool = True,
    consumers: bool = True,
    retry_delays_ms: tuple[int, ...] | None = (100, 300),
) -> AsyncIterator[RunningService]:
    """Runs `service` as `python -m <service> all` would, reading settings from the environment.

    Retry delays are shortened for tests unless `retry_delays_ms` is None.
    """
    settings = as_itself(service.name, settings or service.settings())
    await run_migrations(service, settings)
    tasks: list[asyncio.Task[None]] = []
    async with AsyncExitStack() as stack:
        app = await service.build_app(settings, stack)
        client = TestClient(TestServer(app))
        await client.start_server()
        stack.push_async_callback(client.close)
        pool = await open_pool(service.info, settings, stack)
        handlers: Sequence[Handler] = []
        runner = None
        if consumers and service.build_handlers is not None:
            handlers = await service.build_handlers(settings, stack)
            if retry_delays_ms is not None:
                handlers = [_with_delays(h, retry_delays_ms) for h in handlers]
            runner = ConsumerRunner(
                service=service.name,
                pool=pool,
                amqp_url=str(settings.amqp_url),
                handlers=handlers,
                after_commit=open_unit_of_work(service.info, settings, pool, stack).wake,
                inbox=Inbox(settings.dedupe_window()),
                logins=Logins(settings.service_user_prefix),
            )
            tasks.append(asyncio.ensure_future(runner.run()))
            await wait_for(runner.ready.is_set, message=f"{service.name} consumers ready")
        if relay:
            outbox_relay = OutboxRelay(
                service=service.info.schema,
                pool=pool,
                connect_db=lambda: db.connect(service.info, settings),
                amqp_url=str(settings.amqp_url),
                window=settings.dedupe_window(),
            )
            tasks.append(asyncio.ensure_future(outbox_relay.run()))
        try:
            yield RunningService(settings, app, client, pool, handlers, runner)
        finally:
            await cancel_all(tasks)


def as_itself(service: str, settings: S) -> S:
    """`settings` with the service's own broker and Redis logins (settings.service_logins), as
    `python -m <service>` would log in, unless a test pointed them somewhere of its own."""
    suite_logins = {login_of(os.environ.get(name, "")) for name in ("AMQP_URL", "REDIS_URL")}
    update = {
        field: url
        for field, url in service_logins(
            service, amqp_url=str(settings.amqp_url), redis_url=str(settings.redis_url)
        ).items()
        if login_of(str(getattr(settings, field))) in suite_logins
    }
    return settings.model_copy(update=update) if update else settings


def _with_delays(handler: Handler, delays: tuple[int, ...]) -> Handler:
    return replace(handler, retry_delays_ms=delays[: len(handler.retry_delays_ms)] or delays)
