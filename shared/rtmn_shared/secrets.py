"""Provider credentials encrypted at rest in a service's own table, and key rotation without
downtime: rows sealed by the key ring (keyring.py) are re-sealed batch by batch under its current
key while readers keep working; a key leaves the ring only once no row uses it
(`SecretStore.versions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rtmn_shared.db import Connection, Pool
from rtmn_shared.keyring import KeyRing, SecretsError
from rtmn_shared.metrics import SECRET_KEY_IN_USE_SINCE, SECRET_UPDATED

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_identifier(table: str) -> None:
    if not _IDENTIFIER.match(table):
        raise ValueError(f"{table!r} is not a plain lower-case table name")


def table_sql(table: str = "secrets") -> str:
    """The service-owned table, for a migration (`SECRETS_TABLE_SQL` is the usual name)."""
    _check_identifier(table)
    return (
        "-- Provider credentials sealed under versioned keys (rtmn_shared/secrets.py).\n"
        f"CREATE TABLE {table} (\n"
        "    name        TEXT PRIMARY KEY,\n"
        "    ciphertext  BYTEA NOT NULL,\n"
        "    key_version TEXT NOT NULL,\n"
        "    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
        f"CREATE INDEX {table}_key_version ON {table} (key_version);\n"
    )


SECRETS_TABLE_SQL = table_sql()


@dataclass(frozen=True)
class StoredSecret:
    """What may be shown about a stored secret: never its value."""

    name: str
    key_version: str
    updated_at: datetime


class SecretStore:
    """Named secrets in a service's own `secrets` table, sealed by `ring`."""

    def __init__(self, pool: Pool, ring: KeyRing, *, table: str = "secrets") -> None:
        _check_identifier(table)  # the only text formatted into SQL below
        self.pool = pool
        self.ring = ring
        self.table = table

    async def put(self, name: str, value: str, conn: Connection | None = None) -> None:
        sealed = self.ring.encrypt(value, name=name)
        await (conn or self.pool).execute(
            f"INSERT INTO {self.table} (name, ciphertext, key_version) VALUES ($1, $2, $3)"  # noqa: S608
            " ON CONFLICT (name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext,"
            " key_version = EXCLUDED.key_version, updated_at = now()",
            name,
            sealed,
            self.ring.current,
        )

    async def get(self, name: str) -> str | None:
        sealed = await self.pool.fetchval(
            f"SELECT ciphertext FROM {self.table} WHERE name = $1",  # noqa: S608
            name,
        )
        return None if sealed is None else self.ring.decrypt(sealed, name=name)

    async def entries(self) -> list[StoredSecret]:
        rows = await self.pool.fetch(
            f"SELECT name, key_version, updated_at FROM {self.table} ORDER BY name"  # noqa: S608
        )
        return [StoredSecret(row["name"], row["key_version"], row["updated_at"]) for row in rows]

    async def export_ages(self, service: str) -> None:
        """Sets the metrics an alert compares with the rotation age (90 days in the seed guide)."""
        entries = await self.entries()
        for entry in entries:
            SECRET_UPDATED.labels(service, entry.name).set(entry.updated_at.timestamp())
        current = [e.updated_at for e in entries if e.key_version == self.ring.current]
        if current:
            since = min(current).timestamp()
            SECRET_KEY_IN_USE_SINCE.labels(service, self.ring.current).set(since)

    async def versions(self) -> dict[str, int]:
        """Rows per key version: a key may leave the ring once its count is zero."""
        rows = await self.pool.fetch(
            f"SELECT key_version, count(*) AS n FROM {self.table} GROUP BY key_version"  # noqa: S608
        )
        return {row["key_version"]: row["n"] for row in rows}

    async def rotate_batch(self, batch_size: int = 100) -> int:
        """Re-seals up to `batch_size` rows not under the current key, in one short transaction;
        rows being rotated by another worker are skipped, not waited for. Returns how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT name, ciphertext FROM {self.table} WHERE key_version <> $1"  # noqa: S608
                " ORDER BY name LIMIT $2 FOR UPDATE SKIP LOCKED",
                self.ring.current,
                batch_size,
            )
            resealed = [(row["name"], self._reseal(row["name"], row["ciphertext"])) for row in rows]
            await conn.executemany(
                f"UPDATE {self.table} SET ciphertext = $2, key_version = $3,"  # noqa: S608
                " updated_at = now() WHERE name = $1",
                [(name, sealed, self.ring.current) for name, sealed in resealed],
            )
        return len(resealed)

    def _reseal(self, name: str, ciphertext: bytes) -> bytes:
        try:
            return self.ring.rotate(ciphertext, name=name)
        except SecretsError as error:  # the operator needs to know which row
            raise type(error)(f"{name}: {error}") from None

    async def rotate(self, batch_size: int = 100) -> int:
        """Moves every row to the current key, batch by batch; readers keep working throughout
        because every key still in the ring decrypts. Returns the rows re-sealed."""
        total = 0
        while moved := await self.rotate_batch(batch_size):
            total += moved
        return total
