"""`rtmn-db init`: the database, one role and one schema per service, on a fresh PostgreSQL.

The administrator's connection comes from DATABASE_ADMIN_URL (default: DATABASE_URL as the
`postgres` user); each service's password, where one is used, from <SERVICE>_DB_PASSWORD.
Then the broker and Redis logins that have passwords set (cli/logins.py).
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
from rtmn_shared.provision import provision
from rtmn_shared.suite import SERVICES


def admin_dsn() -> tuple[str, str]:
    """The administrator's DSN (without a database) and the suite's database name."""
    url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://localhost:5432/rtmn"))
    database = url.path.lstrip("/") or "rtmn"
    admin = os.environ.get("DATABASE_ADMIN_URL")
    if admin is None:
        host = url.hostname or "localhost"
        netloc = f"postgres@{host}:{url.port or 5432}"
        admin = urlunsplit((url.scheme, netloc, "/postgres", "", ""))
    return admin, database


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rtmn-db", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the database, roles, schemas and grants")
    init.add_argument("services", nargs="*", default=list(SERVICES), help="default: all")
    args = parser.parse_args(argv)

    unknown = set(args.services) - SERVICES.keys()
    if unknown:
        sys.exit(f"rtmn-db: unknown service(s): {', '.join(sorted(unknown))}")
    admin, database = admin_dsn()
    passwords = {
        name: value
        for name in args.services
        if (value := os.environ.get(f"{name.upper()}_DB_PASSWORD"))
    }
    try:
        asyncio.run(provision(admin, database, [SERVICES[s] for s in args.services], passwords))
    except (OSError, asyncpg.PostgresError) as error:
        sys.exit(f"rtmn-db: cannot provision {database} via {redact_url(admin)}: {error}")
    print(f"rtmn-db: database {database} ready for {', '.join(args.services)}")
    try:
        for line in asyncio.run(provision_logins()):
            print(f"rtmn-db: {line} ready")
    except LoginsError as error:
        sys.exit(f"rtmn-db: {error}")
