"""Creates the database, one login role and one schema per service, and the grants between them.

Run once per PostgreSQL with an administrator's connection; safe to run again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

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
    """Creates the login role unless it exists; sets its password when one is given."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        try:
            async with conn.transaction():  # a savepoint: roles are cluster-wide, runs race
                await conn.execute(f"CREATE ROLE {quote_ident(role)} LOGIN")
        except asyncpg.DuplicateObjectError:
            pass
    if password is not None:
        # Parameters cannot bind here; the server's own function quotes the literal, which
        # carries a SCRAM verifier, so the password itself never reaches the server's logs.
        literal = await conn.fetchval("SELECT quote_literal($1)", scram_verifier(password))
        await conn.execute(f"ALTER ROLE {quote_ident(role)} LOGIN PASSWORD {literal}")


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


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What the server stores for a SCRAM-SHA-256 password (RFC 5802/7677), made here."""
    if not password.isascii():  # SASLprep is the identity only for ASCII: let the server do it
        return password
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    encoded = [base64.b64encode(b).decode() for b in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"
