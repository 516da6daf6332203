"""Plain SQL migrations applied in order, recorded per schema, refused if an applied one changed."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from rtmn_shared.db import Connection

log = logging.getLogger(__name__)

SHARED = Path(str(files("rtmn_shared") / "migrations"))


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(service_dir: Path) -> list[Migration]:
    """The shared outbox/inbox first, then the service's own files in name order."""
    found = [Migration(f"shared/{p.name}", p.read_text()) for p in sorted(SHARED.glob("*.sql"))]
    found += [Migration(p.name, p.read_text()) for p in sorted(service_dir.glob("*.sql"))]
    return found


async def migrate(conn: Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Applies what is new, in one transaction, under a lock so two replicas never race."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"rtmn.migrate.{schema}")
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name TEXT PRIMARY KEY,
                   checksum TEXT NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT name, checksum FROM schema_migrations")
        applied: dict[str, str] = {row["name"]: row["checksum"] for row in rows}
        on_disk = {m.name for m in migrations}
        for name in applied.keys() - on_disk:
            log.warning("applied migration %s is no longer on disk", name, extra={"schema": schema})
        done = []
        for migration in migrations:
            recorded = applied.get(migration.name)
            if recorded == migration.checksum:
                continue
            if recorded is not None:
                raise MigrationError(
                    f"{schema}: migration {migration.name} was edited after it was applied; "
                    "add a new migration instead of changing an applied one"
                )
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                migration.name,
                migration.checksum,
            )
            done.append(migration.name)
        return done
