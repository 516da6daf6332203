"""Idempotency-Key records in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rtmn_shared.db import Connection


@dataclass(frozen=True)
class Key:
    """A user's Idempotency-Key and the digest of the request it came with."""

    user_id: str
    value: str
    request_hash: str


@dataclass(frozen=True)
class KeyRecord:
    request_hash: str
    resource_id: str | None
    status_code: int | None
    response: dict[str, Any] | None
    created_at: datetime


# A claim that made nothing and answered nothing for this long belongs to a request that died
# (its process, or the database under it, before it could release the key): far longer than a
# create or refund can run (the gateway timeout is at most 60 s).
ABANDONED_AFTER_SECONDS = 120.0

# Claims a key, fresh or abandoned by the same request: $1 user, $2 key, $3 request hash, $4 the
# resource it makes (NULL until made), $5 ABANDONED_AFTER_SECONDS. No row back: claimed before.
CLAIM = """INSERT INTO idempotency_keys (user_id, key, request_hash, resource_id)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (user_id, key) DO UPDATE SET created_at = now(), resource_id = EXCLUDED.resource_id
    WHERE idempotency_keys.request_hash = EXCLUDED.request_hash
      AND idempotency_keys.resource_id IS NULL
      AND idempotency_keys.status_code IS NULL
      AND idempotency_keys.created_at < now() - make_interval(secs => $5)"""


async def claim_key(conn: Connection, key: Key) -> KeyRecord | None:
    """Claims the key for this request; returns the earlier claim when there was one. The same
    request takes over an abandoned claim, so a key is never "in progress" for ever."""
    while True:
        claimed = await conn.fetchval(
            CLAIM + " RETURNING true",
            key.user_id,
            key.value,
            key.request_hash,
            None,
            ABANDONED_AFTER_SECONDS,
        )
        if claimed:
            return None
        earlier = await earlier_claim(conn, key)
        if earlier is not None:
            return earlier
        # Released by a failed first request meanwhile: claim it afresh.


async def earlier_claim(conn: Connection, key: Key) -> KeyRecord | None:
    """The claim that kept the key from this request; None if it was released meanwhile."""
    # A statement of its own: its snapshot sees the claim that made the claiming insert wait.
    record = await conn.fetchrow(
        """SELECT request_hash, resource_id, status_code, response::text AS response, created_at
           FROM idempotency_keys WHERE user_id = $1 AND key = $2""",
        key.user_id,
        key.value,
    )
    if record is None:
        return None
    response = record["response"]
    return KeyRecord(
        record["request_hash"],
        record["resource_id"],
        record["status_code"],
        orjson.loads(response) if response is not None else None,
        record["created_at"],
    )


async def set_key_resource(conn: Connection, key: Key, resource_id: str) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET resource_id = $3 WHERE user_id = $1 AND key = $2",
        key.user_id,
        key.value,
        resource_id,
    )


async def complete_key(
    conn: Connection, key: Key, status_code: int, response: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE idempotency_keys SET status_code = $3, response = $4::jsonb
           WHERE user_id = $1 AND key = $2""",
        key.user_id,
        key.value,
        status_code,
        orjson.dumps(response).decode(),
    )


async def release_key(conn: Connection, key: Key) -> None:
    await conn.execute(
        """DELETE FROM idempotency_keys
           WHERE user_id = $1 AND key = $2 AND status_code IS NULL AND resource_id IS NULL""",
        key.user_id,
        key.value,
    )
