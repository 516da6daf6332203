"""The in-app inbox's SQL: the user's pushes (the same notification id), newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from rtmn_shared.db import Pool

# What the inbox shows: every push but one the user's preferences stopped or one still waiting
# out quiet hours (it appears when it goes).
_SHOWN = """
    user_id = $1 AND channel = 'push' AND status <> 'suppressed'
    AND (not_before IS NULL OR not_before <= now())
"""


async def page(
    pool: Pool, user_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` items older than the cursor `after` (created_at, id), and the unread count."""
    rows = await pool.fetch(
        f"""
        SELECT id, category, title, body, created_at, read_at,
               (SELECT count(*) FROM deliveries WHERE {_SHOWN} AND read_at IS NULL) AS unread
        FROM deliveries
        WHERE {_SHOWN}
          AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $2
        """,  # noqa: S608 - built from our own constant, no input
        user_id,
        limit,
        after[0] if after else None,
        after[1] if after else None,
    )
    unread = rows[0]["unread"] if rows else await _unread(pool, user_id)
    return [dict(r) for r in rows], unread


async def _unread(pool: Pool, user_id: str) -> int:
    count: int = await pool.fetchval(
        f"SELECT count(*) FROM deliveries WHERE {_SHOWN} AND read_at IS NULL",  # noqa: S608
        user_id,
    )
    return count


async def mark_read(pool: Pool, user_id: str, notification_id: uuid.UUID) -> bool:
    """Marks one of the user's inbox items read (again: no change); False if not theirs."""
    found = await pool.fetchval(
        f"""
        UPDATE deliveries SET read_at = COALESCE(read_at, now())
        WHERE id = $2 AND {_SHOWN}
        RETURNING true
        """,  # noqa: S608 - built from our own constant, no input
        user_id,
        notification_id,
    )
    return bool(found)
