"""The suite's own administrator on a local PostgreSQL, made over the Unix socket if need be.

A stock Debian PostgreSQL trusts no TCP login: `postgres` has no password and `host` lines ask
for scram-sha-256; only the `postgres` system user gets in, over the socket (`peer`). So on a
local server `rtmn-db` keeps an administrator of its own, `rtmn_admin`, and every password it
generates (the administrator's, each service's runtime and migration roles') in a pgpass file,
the format libpq, psql and asyncpg read on their own (PGPASSFILE; `make` points it at
`.run/pgpass`). When the administrator cannot log in, `postgres` makes it: over TCP where the
server trusts that (as development machines often do), else through `psql` on the socket as the
`postgres` system user (runuser when root, `sudo -n` otherwise).

`rtmn_admin` is a superuser because PostGIS, which the geo schema needs, is no trusted
extension, and because the roles it sets passwords on may have been made by `postgres`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from rtmn_shared import scram

ADMIN = "rtmn_admin"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SOCKET_DIR = os.environ.get("RTMN_PG_SOCKET_DIR", "/var/run/postgresql")
# A login the server refused: no such role, no pg_hba line, or a wrong or missing password
# (InvalidPasswordError is one); anything else (the server away) is no answer and propagates.
_REFUSED = asyncpg.InvalidAuthorizationSpecificationError


class AdminError(Exception):
    pass


@dataclass(frozen=True)
class PassFile:
    """One cluster's lines (`*:<port>:*:<role>:<password>`) in a pgpass file, mode 0600."""

    path: Path
    port: int

    @classmethod
    def from_environment(cls, port: int) -> PassFile | None:
        path = os.environ.get("PGPASSFILE")
        return cls(Path(path), port) if path else None

    def ensure(self, roles: Iterable[str]) -> dict[str, str]:
        """Each role's password, generated (and written) for a role that has none yet."""
        with self._locked():
            known = self._read()
            wanted = {role: known.get(role) or secrets.token_urlsafe(24) for role in roles}
            if any(role not in known for role in wanted):
                self._write({**known, **wanted})
        return wanted

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        found = {}
        for line in self.path.read_text().splitlines():
            parts = line.split(":")
            if len(parts) == 5 and parts[1] == str(self.port):
                found[parts[3]] = parts[4]
        return found

    def _write(self, passwords: dict[str, str]) -> None:
        others = []
        if self.path.exists():
            others = [
                line
                for line in self.path.read_text().splitlines()
                if line.split(":")[1:2] != [str(self.port)]
            ]
        ours = [f"*:{self.port}:*:{role}:{password}" for role, password in passwords.items()]
        partial = self.path.with_name(self.path.name + ".partial")
        # Created 0600 before any password is in it; renamed over the old file in one step.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join([*others, *ours]) + "\n")
        partial.replace(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Test runs and `make run` started together generate each password once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def admin_url(host: str, port: int) -> str:
    """The administrator's DSN; its password comes from the pgpass file."""
    return f"postgresql://{ADMIN}@{_netloc(host)}:{port}/postgres"


async def ensure_admin(host: str, port: int, passfile: PassFile) -> str:
    """The administrator's DSN, once it can log in; makes it, or resets its password, if not."""
    password = passfile.ensure([ADMIN])[ADMIN]
    dsn = admin_url(host, port)
    if await _logs_in(dsn, passfile.path):
        return dsn
    if host not in LOCAL_HOSTS:
        raise AdminError(
            f"{ADMIN} cannot log in to {host}:{port}, which is not local: "
            "set DATABASE_ADMIN_URL to an administrator's DSN"
        )
    sql = _admin_sql(password)
    try:
        conn = await asyncpg.connect(f"postgresql://postgres@{_netloc(host)}:{port}/postgres")
    except _REFUSED:
        _as_postgres_system_user(port, sql)
    else:
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    if not await _logs_in(dsn, passfile.path):
        raise AdminError(f"{ADMIN} was made but still cannot log in to {host}:{port}")
    return dsn


def _admin_sql(password: str) -> str:
    """As its SCRAM verifier (base64, $ and :, nothing to escape), never the password itself."""
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ADMIN}') "
        f"THEN CREATE ROLE {ADMIN}; END IF; END $$;\n"
        f"ALTER ROLE {ADMIN} LOGIN SUPERUSER PASSWORD '{scram.verifier(password)}';\n"
    )


def _as_postgres_system_user(port: int, sql: str) -> None:
    """`peer` authentication: psql on the local socket as the `postgres` system user. The SQL
    (with the password) goes on stdin, never on a command line others could read."""
    switch = (
        ["runuser", "-u", "postgres", "--"]
        if os.geteuid() == 0
        else ["sudo", "-n", "-u", "postgres"]
    )
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCKET_DIR, "-p", str(port)]
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [*switch, *psql, "-d", "postgres", "-f", "-"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",  # the postgres user may not read the caller's directory
    )
    if done.returncode != 0:
        raise AdminError(
            f"cannot make {ADMIN} as the postgres system user on {SOCKET_DIR} port {port}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )


async def _logs_in(dsn: str, passfile: Path) -> bool:
    try:
        conn = await asyncpg.connect(dsn, passfile=str(passfile))
    except _REFUSED:
        return False
    await conn.close()
    return True


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host
