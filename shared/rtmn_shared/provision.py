"""Creates the database, one login role and one schema per service, and the grants between them.

Run once per PostgreSQL with an administrator's connection; safe to run again.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from rtmn_shared import scram
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
    role_passwords: Mapping[str, str] | None = None,
) -> None:
    """`role_passwords`: role name -> password, set on each role named (the runtime role
    `rtmn_<service>` and the migration role `rtmn_<service>_owner`); a role left out keeps its
    own (or none, which only a `trust` server accepts)."""
    role_passwords = role_passwords or {}
    await create_database(admin_dsn, database)
    conn = await asyncpg.connect(admin_dsn, database=database)
    try:
        async with conn.transaction():
            # Two provisioners of one database (replicas of the init Job) take turns.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rtmn.provision'))")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute(f"REVOKE ALL ON DATABASE {quote_ident(database)} FROM PUBLIC")
            for service in services:
                for role in (service.owner, service.role):
                    await ensure_login(conn, role, role_passwords.get(role))
                await _provision_service(conn, database, service)
    finally:
        await conn.close()


async def ensure_login(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    """Creates the login role unless it exists; sets its password when one is given and the
    role's is another. In the caller's transaction."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        try:
            async with conn.transaction():  # a savepoint: roles are cluster-wide, runs race
                await conn.execute(f"CREATE ROLE {quote_ident(role)} LOGIN")
        except asyncpg.DuplicateObjectError:
            pass
    if password is None or await _has_password(conn, role, password):
        return
    # The literal carries a verifier, so the password never reaches the server's logs; the
    # server's own function quotes it (parameters cannot bind here). Non-ASCII passwords need
    # the server's SASLprep.
    made = scram.verifier(password) if password.isascii() else password
    literal = await conn.fetchval("SELECT quote_literal($1)", made)
    for attempt in range(3):
        try:
            async with conn.transaction():
                await conn.execute(f"ALTER ROLE {quote_ident(role)} LOGIN PASSWORD {literal}")
            return
        except asyncpg.InternalServerError:  # "tuple concurrently updated": another run's
            if attempt == 2:
                raise


async def _has_password(conn: asyncpg.Connection, role: str, password: str) -> bool:
    """Whether the role's stored verifier is this password's; False where that cannot be read
    (an administrator short of a superuser, as managed services give)."""
    try:
        async with conn.transaction():
            stored = await conn.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role
            )
    except asyncpg.InsufficientPrivilegeError:
        return False
    return scram.matches(stored, password)


async def _provision_service(conn: asyncpg.Connection, database: str, service: ServiceInfo) -> None:
    """The migration role owns the schema and its objects; the runtime role only uses its rows.

    What the migration role creates gives the runtime role row rights by default privileges,
    which a migration may narrow (wallet's entries: insert, never update). A schema provisioned
    before the split, owned by the runtime role, is handed over once, with row rights on all.
    """
    owner, runtime = quote_ident(service.owner), quote_ident(service.role)
    schema = quote_ident(service.schema)
    on_database = f"ON DATABASE {quote_ident(database)}"
    await conn.execute(f"GRANT CONNECT, TEMPORARY {on_database} TO {owner}, {runtime}")
    held_by = await conn.fetchval(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", service.schema
    )
    if held_by is None:
        await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
    elif held_by == service.role:
        await conn.execute(f"REASSIGN OWNED BY {runtime} TO {owner}")  # this database's only
        for privileges, kind in RUNTIME_GRANTS:
            await conn.execute(f"GRANT {privileges} ON ALL {kind} IN SCHEMA {schema} TO {runtime}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
    await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {runtime}")
    for privileges, kind in RUNTIME_GRANTS:
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
            f"GRANT {privileges} ON {kind} TO {runtime}"
        )
    for extension in service.extensions:
        # Extensions need a superuser; their objects live in public, which the roles may use.
        await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(extension)}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {owner}, {runtime}")


# What the runtime role gets on everything the migration role makes in its schema: rows, and
# the sequences behind identity columns. Functions are executable by default.
RUNTIME_GRANTS = (
    ("SELECT, INSERT, UPDATE, DELETE", "TABLES"),
    ("USAGE, SELECT", "SEQUENCES"),
)
