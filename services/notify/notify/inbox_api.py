"""The in-app inbox: the caller's notifications newest first, cursor paged, with read state."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from notify import inbox_store
from rtmn_shared.db import Pool
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import USER, Call, Routes, json_response


class InboxQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of a page")


class InboxItem(BaseModel):
    id: uuid.UUID = Field(description="the push's notification id")
    category: str
    title: str | None
    body: str | None
    created_at: datetime
    read: bool


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None = Field(description="absent on the last page")
    unread: int


def add_inbox_routes(routes: Routes, pool: Pool) -> None:
    @routes.get("/api/notify/inbox", query=InboxQuery, response=InboxPage, auth=USER)
    async def inbox(call: Call) -> web.StreamResponse:
        """The caller's inbox, newest first, and how many items are unread."""
        query = call.query(InboxQuery)
        after = _read_cursor(query.cursor) if query.cursor else None
        rows, unread = await inbox_store.page(pool, call.user.user_id, query.limit + 1, after)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items = [InboxItem(**{**r, "read": r["read_at"] is not None}) for r in rows]
        cursor = _cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
        return json_response(InboxPage(items=items, next_cursor=cursor, unread=unread))

    @routes.post("/api/notify/inbox/{id}/read", status=204, auth=USER)
    async def mark_read(call: Call) -> web.StreamResponse:
        """Mark one of the caller's inbox items read."""
        try:
            notification_id = uuid.UUID(call.path("id"))
        except ValueError:
            raise Problem(404, "no such notification in this user's inbox") from None
        if not await inbox_store.mark_read(pool, call.user.user_id, notification_id):
            raise Problem(404, "no such notification in this user's inbox")
        return web.Response(status=204)


def _cursor(created_at: datetime, notification_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{notification_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, notification_id = raw.partition("|")
        at, after = datetime.fromisoformat(created_at), uuid.UUID(notification_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        at = None
    if at is None or at.tzinfo is None:
        raise Problem(400, "cursor is not one this API returned")
    return at, after
