"""A pool per service, logged in as the service's own role and confined to its own schema."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from rtmn_shared.settings import CommonSettings
from rtmn_shared.suite import ServiceInfo

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# What a handler works in: a pooled connection or a dedicated one; both speak the same SQL.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


def role_of(service: ServiceInfo, settings: CommonSettings) -> str:
    return settings.db_user or service.role


async def create_pool(service: ServiceInfo, settings: CommonSettings) -> Pool:
    password = settings.db_password.get_secret_value() if settings.db_password else None
    pool = await asyncpg.create_pool(
        str(settings.database_url),
        user=role_of(service, settings),
        password=password,
        min_size=1,
        max_size=settings.db_pool_size,
        server_settings={"search_path": service.schema, "application_name": f"rtmn-{service.name}"},
    )
    assert pool is not None
    return pool


async def connect(
    service: ServiceInfo, settings: CommonSettings
) -> asyncpg.Connection[asyncpg.Record]:
    """A single connection outside the pool: for LISTEN, which must keep its session."""
    password = settings.db_password.get_secret_value() if settings.db_password else None
    return await asyncpg.connect(
        str(settings.database_url),
        user=role_of(service, settings),
        password=password,
        server_settings={"search_path": service.schema, "application_name": f"rtmn-{service.name}"},
    )
