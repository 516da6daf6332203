"""`rtmn-db`: the database, two roles and one schema per service, on a fresh PostgreSQL.

`rtmn-db init` makes them; `rtmn-db admin` only makes sure the administrator can log in.
Each service has a runtime role `rtmn_<service>` (its rows) and a migration role
`rtmn_<service>_owner` (its schema and every object in it).

Where the passwords come from:
- DATABASE_ADMIN_URL set (compose, Kubernetes): that administrator, and each role's password
  from <SERVICE>_DB_PASSWORD and <SERVICE>_DB_MIGRATION_PASSWORD where set.
- else PGPASSFILE set (`make` sets `.run/pgpass`): the suite's own administrator `rtmn_admin`
  (made over the local socket if need be, rtmn_shared/pgadmin.py), and a generated password for
  every role, kept in that file, where the services' and the tests' connections find them.
- else `postgres` on DATABASE_URL's host with no password: a server that trusts it.

Then `rtmn-db init` makes the broker and Redis logins that have passwords set (cli/logins.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rtmn_shared.cli.logins import LoginsError, provision_logins
from rtmn_shared.logs import redact_url
from rtmn_shared.pgadmin import AdminError, PassFile, ensure_admin
from rtmn_shared.provision import provision
from rtmn_shared.suite import SERVICES, ServiceInfo

# 127.0.0.1, not localhost: `make` and the tests use it, and a pg_hba line for ::1 may differ.
DEFAULT_URL = "postgresql://127.0.0.1:5432/rtmn"


def admin_dsn() -> tuple[str, str]:
    """The administrator's DSN (without a database) and the suite's database name."""
    url = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_URL))
    database = url.path.lstrip("/") or "rtmn"
    admin = os.environ.get("DATABASE_ADMIN_URL")
    if admin is None:
        host = url.hostname or "localhost"
        netloc = f"postgres@{host}:{url.port or 5432}"
        admin = urlunsplit((url.scheme, netloc, "/postgres", "", ""))
    return admin, database


async def credentials(services: list[ServiceInfo]) -> tuple[str, dict[str, str]]:
    """The administrator's DSN and the password of each role of `services` (see above)."""
    admin, _ = admin_dsn()
    url = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_URL))
    port = url.port or 5432
    passfile = PassFile.from_environment(port)
    if "DATABASE_ADMIN_URL" in os.environ or passfile is None:
        from_env = {
            role: value
            for service in services
            for role, name in (
                (service.role, "DB_PASSWORD"),
                (service.owner, "DB_MIGRATION_PASSWORD"),
            )
            if (value := os.environ.get(f"{service.name.upper()}_{name}"))
        }
        return admin, from_env
    admin = await ensure_admin(url.hostname or "localhost", port, passfile)
    return admin, passfile.ensure(role for s in services for role in (s.owner, s.role))


async def init(database: str, services: list[ServiceInfo]) -> None:
    admin, passwords = await credentials(services)
    await provision(admin, database, services, passwords)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="rtmn-db", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init_cmd = sub.add_parser("init", help="create the database, roles, schemas and grants")
    init_cmd.add_argument("services", nargs="*", default=list(SERVICES), help="default: all")
    sub.add_parser("admin", help="make sure the administrator logs in (with PGPASSFILE set)")
    args = parser.parse_args(argv)

    admin, database = admin_dsn()
    if args.command == "admin":
        if "DATABASE_ADMIN_URL" in os.environ or "PGPASSFILE" not in os.environ:
            print("rtmn-db: DATABASE_ADMIN_URL set or no PGPASSFILE: no administrator to make")
            return
        try:
            admin = asyncio.run(credentials([]))[0]
        except (OSError, asyncpg.PostgresError, AdminError) as error:
            sys.exit(f"rtmn-db: no administrator via {redact_url(admin)}: {error}")
        print(f"rtmn-db: {redact_url(admin)} logs in")
        return
    unknown = set(args.services) - SERVICES.keys()
    if unknown:
        sys.exit(f"rtmn-db: unknown service(s): {', '.join(sorted(unknown))}")
    try:
        asyncio.run(init(database, [SERVICES[s] for s in args.services]))
    except (OSError, asyncpg.PostgresError, AdminError) as error:
        sys.exit(f"rtmn-db: cannot provision {database} via {redact_url(admin)}: {error}")
    print(f"rtmn-db: database {database} ready for {', '.join(args.services)}")
    try:
        for line in asyncio.run(provision_logins()):
            print(f"rtmn-db: {line} ready")
    except LoginsError as error:
        sys.exit(f"rtmn-db: {error}")
