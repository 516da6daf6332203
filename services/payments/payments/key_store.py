"""Idempotency-Key records in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rtmn_shared.db import Connection


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


async def claim_key(
    conn: Connection, user_id: str, key: str, request_hash: str
) -> KeyRecord | None:
    """Claims the key for this request; returns the earlier claim when there was one. The same
    request takes over an abandoned claim, so a key is never "in progress" for ever."""
    claimed = await conn.fetchval(
        """INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, key) DO UPDATE SET created_at = now()
           WHERE idempotency_keys.request_hash = EXCLUDED.request_hash
             AND idempotency_keys.resource_id IS NULL
             AND idempotency_keys.status_code IS NULL
             AND idempotency_keys.created_at < now() - make_interval(secs => $4)
           RETURNING true""",
        user_id,
        key,
        request_hash,
        ABANDONED_AFTER_SECONDS,
    )
    if claimed:
        return None
    # A statement of its own: its snapshot sees the claim that made the insert above wait.
    record = await conn.fetchrow(
        """SELECT request_hash, resource_id, status_code, response::text AS response, created_at
           FROM idempotency_keys WHERE user_id = $1 AND key = $2""",
        user_id,
        key,
    )
    if record is None:  # released by a failed first request meanwhile: claim it afresh
        return await claim_key(conn, user_id, key, request_hash)
    response = record["response"]
    return KeyRecord(
        record["request_hash"],
        record["resource_id"],
        record["status_code"],
        orjson.loads(response) if response is not None else None,
        record["created_at"],
    )


async def set_key_resource(conn: Connection, user_id: str, key: str, resource_id: str) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET resource_id = $3 WHERE user_id = $1 AND key = $2",
        user_id,
        key,
        resource_id,
    )


async def complete_key(
    conn: Connection, user_id: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE idempotency_keys SET status_code = $3, response = $4::jsonb
           WHERE user_id = $1 AND key = $2""",
        user_id,
        key,
        status_code,
        orjson.dumps(response).decode(),
    )


async def release_key(conn: Connection, user_id: str, key: str) -> None:
    await conn.execute(
        """DELETE FROM idempotency_keys
           WHERE user_id = $1 AND key = $2 AND status_code IS NULL AND resource_id IS NULL""",
        user_id,
        key,
    )
