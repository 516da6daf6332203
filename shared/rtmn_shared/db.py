"""A pool per service, logged in as the service's own role and confined to its own schema."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import asyncpg
import redis.exceptions
from asyncpg.pool import PoolConnectionProxy

from rtmn_shared.resilience import Backoff
from rtmn_shared.settings import CommonSettings
from rtmn_shared.suite import ServiceInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# What a handler works in: a pooled connection or a dedicated one; both speak the same SQL.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# The database (or Redis) is away (restarting, failing over, dropped the connection), not
# refusing the work.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    # A pooled connection whose server went away between an error and the socket's close:
    # asyncpg still thinks the failed statement is running ("another operation is in progress")
    # until the close arrives a moment later. Never shared between tasks here otherwise.
    asyncpg.exceptions.InternalClientError,
    redis.exceptions.ConnectionError,
)
# Any way a database call can fail: the server refused the statement, or was away.
FAILURES: tuple[type[Exception], ...] = (asyncpg.PostgresError, *UNAVAILABLE)


def role_of(service: ServiceInfo, settings: CommonSettings) -> str:
    return settings.db_user or service.role


def migration_role_of(service: ServiceInfo, settings: CommonSettings) -> str:
    return settings.db_migration_user or service.owner


async def keep_session(conn: object) -> None:
    """The pool's reset on release: nothing beyond asyncpg's own rollback of an open transaction.

    asyncpg's default reset costs a round trip per checkout (RESET ALL, UNLISTEN *, ...), a fifth
    of a webhook's or a consumed event's round trips. Pooled sessions here change no session
    state: no SET, LISTEN or session advisory lock outlives its transaction (found and measured
    by the payments team).
    """


async def create_pool(
    service: ServiceInfo, settings: CommonSettings, *, durable_commits: bool = True
) -> Pool:
    """With durable_commits=False a commit returns before its WAL is flushed: for writes a crash
    may lose at no cost but repeated work (the relay's "sent" marks)."""
    password = settings.db_password.get_secret_value() if settings.db_password else None
    session = {"search_path": service.schema, "application_name": f"rtmn-{service.name}"}
    if not durable_commits:
        session["synchronous_commit"] = "off"
    pool = await asyncpg.create_pool(
        str(settings.database_url),
        user=role_of(service, settings),
        password=password,
        min_size=1,
        max_size=settings.db_pool_size,
        server_settings=session,
        reset=keep_session,
    )
    assert pool is not None
    return pool


async def connect(
    service: ServiceInfo, settings: CommonSettings, *, as_owner: bool = False
) -> asyncpg.Connection[asyncpg.Record]:
    """A single connection outside the pool: for LISTEN, which must keep its session, or (as the
    schema's owner) for migrations. Without a password set, asyncpg looks in PGPASSFILE."""
    user, secret = (
        (migration_role_of(service, settings), settings.db_migration_password)
        if as_owner
        else (role_of(service, settings), settings.db_password)
    )
    return await asyncpg.connect(
        str(settings.database_url),
        user=user,
        password=secret.get_secret_value() if secret else None,
        server_settings={"search_path": service.schema, "application_name": f"rtmn-{service.name}"},
    )


async def write_through_outages(
    pool: Pool,
    work: Callable[[Connection], Awaitable[T]],
    *,
    within: float,
    one_statement: bool = False,
) -> T:
    """Runs `work` in a transaction, again while the database is unavailable, for up to `within`
    seconds: for recording what already happened elsewhere (a provider accepted a send), which a
    database restart must not lose. `work` must be safe to run again after a commit whose answer
    was lost. With `one_statement`, `work` is a single statement, atomic on its own: no BEGIN and
    COMMIT round trips around it."""
    deadline = time.monotonic() + within
    backoff = Backoff()
    while True:
        try:
            async with pool.acquire() as conn:
                if one_statement:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)
        except UNAVAILABLE as error:
            delay = backoff.next()
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable (%s); again in %.1fs", type(error).__name__, delay)
            await pool.expire_connections()  # none that saw it fail is trusted again
            await asyncio.sleep(delay)
