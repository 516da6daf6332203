"""Provider credentials encrypted at rest under versioned keys, and key rotation without downtime.

The key ring comes from one setting, `SECRETS_KEYS="v2:<base64 32 bytes>,v1:<base64 32 bytes>"`:
the first key encrypts, every key in the ring decrypts. A ciphertext names the version of the key
that sealed it, so during a rotation readers take old and new rows alike while a batch job moves
rows to the current key; a key leaves the ring only once no row uses it (`SecretStore.versions`).

AES-256-GCM with a random 96-bit nonce per seal; the associated data binds a ciphertext to its key
version and to the name it is stored under, so a row copied onto another name does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtmn_shared.metrics import SECRET_KEY_IN_USE_SINCE, SECRET_UPDATED

if TYPE_CHECKING:  # settings.py parses SECRETS_KEYS with this module, and db.py imports settings
    from rtmn_shared.db import Connection, Pool

_FORMAT = 1
_NONCE_BYTES = 12
_KEY_BYTES = 32
_VERSION = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SecretsError(Exception):
    """A secret could not be sealed or opened; the message never contains key or plaintext."""


class KeyRingError(SecretsError):
    """SECRETS_KEYS is malformed."""


class UnknownKeyVersion(SecretsError):
    """The ciphertext was sealed with a key that is no longer (or never was) in the ring."""


class TamperedSecret(SecretsError):
    """The ciphertext is malformed or was altered, or belongs to another name."""


def generate_key() -> str:
    """A fresh key for the ring, as its base64 text."""
    return base64.b64encode(AESGCM.generate_key(bit_length=_KEY_BYTES * 8)).decode()


@dataclass(frozen=True)
class KeyRing:
    keys: Mapping[str, bytes]  # version -> key, the current one first
    current: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """`"v2:<base64>,v1:<base64>"`: the first is the current key."""
        keys: dict[str, bytes] = {}
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            version, sep, encoded = entry.partition(":")
            version = version.strip()
            if not sep or not _VERSION.match(version):
                raise KeyRingError(f"SECRETS_KEYS: {version!r} is not a version name (v1, 2026a…)")
            if version in keys:
                raise KeyRingError(f"SECRETS_KEYS: version {version!r} appears twice")
            keys[version] = _decode_key(version, encoded.strip())
        if not keys:
            raise KeyRingError("SECRETS_KEYS holds no key")
        return cls(keys, next(iter(keys)))

    def encrypt(self, plaintext: str, *, name: str = "") -> bytes:
        version = self.current.encode()
        header = bytes([_FORMAT, len(version)]) + version
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.current]).encrypt(
            nonce, plaintext.encode(), header + name.encode()
        )
        return header + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, name: str = "") -> str:
        version, header, body = _split(ciphertext)
        key = self.keys.get(version)
        if key is None:
            raise UnknownKeyVersion(
                f"sealed with key {version!r}, which SECRETS_KEYS no longer holds"
                f" (it holds {', '.join(self.keys)})"
            )
        try:
            plain = AESGCM(key).decrypt(
                body[:_NONCE_BYTES], body[_NONCE_BYTES:], header + name.encode()
            )
        except InvalidTag:
            raise TamperedSecret(f"a secret sealed with {version!r} failed its check") from None
        return plain.decode()

    def rotate(self, ciphertext: bytes, *, name: str = "") -> bytes:
        """The same secret sealed with the current key (unchanged if it already is)."""
        if version_of(ciphertext) == self.current:
            self.decrypt(ciphertext, name=name)  # still proves it is intact
            return ciphertext
        return self.encrypt(self.decrypt(ciphertext, name=name), name=name)


def version_of(ciphertext: bytes) -> str:
    return _split(ciphertext)[0]


def _split(ciphertext: bytes) -> tuple[str, bytes, bytes]:
    if len(ciphertext) < 2 or ciphertext[0] != _FORMAT:
        raise TamperedSecret("not a sealed secret of a known format")
    end = 2 + ciphertext[1]
    body = ciphertext[end:]
    if len(body) < _NONCE_BYTES + 16:
        raise TamperedSecret("a sealed secret too short to be one")
    try:
        version = ciphertext[2:end].decode("ascii")
    except UnicodeDecodeError:
        raise TamperedSecret("a sealed secret with an unreadable key version") from None
    return version, ciphertext[:end], body


def _decode_key(version: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise KeyRingError(f"SECRETS_KEYS: key {version!r} must be {_KEY_BYTES} bytes of base64")
    return key


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
