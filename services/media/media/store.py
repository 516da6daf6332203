"""The media and usage tables: SQL only."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from asyncpg import Record

from media.domain import Media, StoredRendition
from rtmn_shared.db import Connection, Pool


async def insert_media(conn: Connection, media: Media) -> None:
    renditions = {
        name: {"key": r.key, "width": r.width, "height": r.height, "bytes": r.bytes}
        for name, r in media.renditions.items()
    }
    await conn.execute(
        """
        INSERT INTO media (media_id, owner_id, folder, kind, source_format, source_bytes,
                           source_width, source_height, renditions)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
        """,
        media.media_id,
        media.owner_id,
        media.folder,
        media.kind,
        media.source_format,
        media.source_bytes,
        media.source_width,
        media.source_height,
        orjson.dumps(renditions).decode(),
    )


async def get_media(pool: Pool, media_id: uuid.UUID) -> Media | None:
    row = await pool.fetchrow("SELECT * FROM media WHERE media_id = $1", media_id)
    return None if row is None else _media(row)


def _media(row: Record) -> Media:
    stored: dict[str, Any] = orjson.loads(row["renditions"])
    return Media(
        media_id=row["media_id"],
        owner_id=row["owner_id"],
        folder=row["folder"],
        kind=row["kind"],
        source_format=row["source_format"],
        source_bytes=row["source_bytes"],
        source_width=row["source_width"],
        source_height=row["source_height"],
        renditions={
            name: StoredRendition(r["key"], r["width"], r["height"], r["bytes"])
            for name, r in stored.items()
        },
        created_at=row["created_at"],
    )


async def reserve_bytes(pool: Pool, owner_id: str, size: int, quota: int) -> bool:
    """Adds `size` to the owner's usage unless that would pass `quota`; atomic per owner."""
    row = await pool.fetchrow(
        """
        INSERT INTO usage AS u (owner_id, used_bytes)
        SELECT $1, $2::bigint WHERE $2::bigint <= $3::bigint
        ON CONFLICT (owner_id) DO UPDATE SET used_bytes = u.used_bytes + EXCLUDED.used_bytes
        WHERE u.used_bytes + EXCLUDED.used_bytes <= $3
        RETURNING used_bytes
        """,
        owner_id,
        size,
        quota,
    )
    return row is not None


async def adjust_bytes(pool: Pool, owner_id: str, delta: int, quota: int) -> bool:
    """Moves a reservation by `delta`; growing it past `quota` is refused, shrinking never."""
    row = await pool.fetchrow(
        """
        UPDATE usage SET used_bytes = GREATEST(used_bytes + $2::bigint, 0)
        WHERE owner_id = $1 AND ($2::bigint <= 0 OR used_bytes + $2::bigint <= $3::bigint)
        RETURNING used_bytes
        """,
        owner_id,
        delta,
        quota,
    )
    return row is not None


async def used_bytes(pool: Pool, owner_id: str) -> int:
    used: int | None = await pool.fetchval(
        "SELECT used_bytes FROM usage WHERE owner_id = $1", owner_id
    )
    return used or 0
