"""The media table: SQL only."""

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
