"""Creates the database, one login role and one schema per service, and the grants between them.

Run once per PostgreSQL with an administrator's connection; safe to run again.
"""

from __future__ import annotations

import asyncpg

from rtmn_shared.suite import ServiceInfo


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(admin_dsn: str, database: str) -> bool:
    conn = await asyncpg.connect(admin_dsn, database="postgres")
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            return False
        await conn.execute(f"CREATE DATABASE {quote_ident(database)}")
        return True
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, database="postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()


async def provision(
    admin_dsn: str,
    database: str,
    services: list[ServiceInfo],
    passwords: dict[str, str] | None = None,
) -> None:
    passwords = passwords or {}
    await create_database(admin_dsn, database)
    conn = await asyncpg.connect(admin_dsn, database=database)
    try:
        # Roles are cluster-wide; two provisioners racing on a fresh server must not fail.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rtmn.provision'))")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute(f"REVOKE ALL ON DATABASE {quote_ident(database)} FROM PUBLIC")
            for service in services:
                await _provision_service(conn, database, service, passwords.get(service.name))
    finally:
        await conn.close()


async def _provision_service(
    conn: asyncpg.Connection, database: str, service: ServiceInfo, password: str | None
) -> None:
    role, schema = quote_ident(service.role), quote_ident(service.schema)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service.role)
    if not exists:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
    if password is not None:
        # Parameters cannot bind here; the literal is quoted by the server's own function.
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"ALTER ROLE {role} PASSWORD {literal}")
    await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(database)} TO {role}")
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
    for extension in service.extensions:
        # Extensions need a superuser; their objects live in public, which the role may use.
        await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(extension)}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
