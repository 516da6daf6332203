"""What a service is and the resources its composition root opens.

A service describes itself with a `Service`; its composition root builds the HTTP app and the
event handlers from settings, opening pools, Redis and background work on an `AsyncExitStack`,
so everything opened is closed on the way out. The entry point that runs it is entry.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from rtmn_shared import db
from rtmn_shared.events.consumer import Handler
from rtmn_shared.events.wakeup import RelayWakeup, UnitOfWork
from rtmn_shared.keyring import SecretsError
from rtmn_shared.logs import redact_url
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.partitions import keep_partitions
from rtmn_shared.secrets import SecretStore
from rtmn_shared.settings import (
    CommonSettings,
    SettingsError,
    load_settings,
    secret_settings,
    service_logins,
    set_in_environment,
)
from rtmn_shared.suite import SERVICES, ServiceInfo

log = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)


@dataclass(frozen=True)
class Service(Generic[S]):
    name: str
    settings: type[S]
    migrations: Path
    # Builds the HTTP app; resources it opens go on the stack and close with it.
    build_app: Callable[[S, AsyncExitStack], Awaitable[web.Application]]
    # Builds the event handlers of the consumer process, if the service consumes events.
    build_handlers: Callable[[S, AsyncExitStack], Awaitable[Sequence[Handler]]] | None = None

    @property
    def info(self) -> ServiceInfo:
        return SERVICES[self.name]


async def open_pool(
    info: ServiceInfo,
    settings: CommonSettings,
    stack: AsyncExitStack,
    *,
    durable_commits: bool = True,
) -> db.Pool:
    try:
        pool = await db.create_pool(info, settings, durable_commits=durable_commits)
    except (OSError, asyncpg.PostgresError) as error:
        raise SystemExit(
            f"{info.name}: database not reachable at {redact_url(settings.database_url)} "
            f"as {db.role_of(info, settings)}: {error}"
        ) from None
    stack.push_async_callback(pool.close)
    return pool


def background(work: Coroutine[Any, Any, None], stack: AsyncExitStack) -> None:
    """Runs `work` until the stack closes, then cancels it and waits for it to finish."""
    task = asyncio.ensure_future(work)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


def open_unit_of_work(
    info: ServiceInfo, settings: CommonSettings, pool: db.Pool, stack: AsyncExitStack
) -> UnitOfWork:
    """Transactions that wake this service's relay once they commit (see events/wakeup.py)."""
    wakeup = RelayWakeup(lambda: db.connect(info, settings), info.schema)
    background(wakeup.run(), stack)
    return UnitOfWork(pool, wakeup.poke)


async def open_redis(settings: CommonSettings, stack: AsyncExitStack) -> Redis:
    redis = Redis.from_url(str(settings.redis_url), socket_timeout=5, socket_connect_timeout=2)
    stack.push_async_callback(redis.aclose)
    return redis


async def load_service_settings(service: Service[S]) -> tuple[S, list[str]]:
    """Settings from the environment and, with SECRETS_KEYS set, each credential the environment
    leaves unset from the service's sealed store: the environment wins, so local runs and tests
    keep using variables. Returns the settings and the names that came from the store."""
    given = set_in_environment(service.settings)
    logins = service_logins(service.name)  # its own broker and Redis users, where configured
    if "secrets_keys" not in given:
        return load_settings(service.settings, **logins), []
    common = load_settings(CommonSettings)
    ring = common.key_ring()  # a malformed ring stops start-up even when nothing needs it
    assert ring is not None
    declared = secret_settings(service.settings)
    wanted = [name for name, field in declared.items() if field not in given]
    stored: dict[str, str] = {}
    if wanted:
        async with AsyncExitStack() as stack:
            pool = await open_pool(service.info, common, stack)
            store = SecretStore(pool, ring)
            stored = await read_stored(store, wanted)
            if stored:  # the table exists and this process runs with what it holds
                await store.export_ages(service.name)
    values = {declared[name]: value for name, value in stored.items()}
    return load_settings(service.settings, **values, **logins), sorted(stored)


async def read_stored(store: SecretStore, names: Sequence[str]) -> dict[str, str]:
    """The stored values of `names`; one that cannot be opened stops start-up, named, its value
    never shown. Before the migrations have made the table nothing can have been stored."""
    found: dict[str, str] = {}
    problems = []
    for name in names:
        try:
            value = await store.get(name)
        except asyncpg.UndefinedTableError:
            return {}
        except SecretsError as error:
            problems.append(f"configuration error: {name} is stored but cannot be opened: {error}")
            continue
        if value is not None:
            found[name] = value
    if problems:
        raise SettingsError("\n".join(problems))
    return found


async def run_migrations(service: Service[Any], settings: CommonSettings) -> list[str]:
    """Applies what is new, then makes today's partitions so that none is missing at start; as the
    schema's owner, the only role that may change its objects."""
    conn = await db.connect(service.info, settings, as_owner=True)
    try:
        applied = await migrate(conn, service.info.schema, discover(service.migrations))
        await keep_partitions(conn, settings.dedupe_window())
        return applied
    finally:
        await conn.close()
