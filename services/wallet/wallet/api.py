"""The caller's coins and their history. Read-only: coins move only through events."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from rtmn_shared.db import Pool
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import USER, Call, Routes, json_response
from wallet import store

_CURSOR_PREFIX = "v1:"


class Balance(BaseModel):
    user_id: str
    coins: int = Field(description="may be negative after a reversal of spent coins")
    updated_at: datetime | None


class LedgerEntry(BaseModel):
    entry_id: str
    kind: str = Field(description="cashback or cashback_reversal")
    coins: int = Field(description="signed: a reversal is negative")
    payment_id: str
    refund_id: str | None
    balance_after: int
    shortfall: int = Field(description="coins of a reversal not covered by the balance")
    created_at: datetime


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="pass as ?cursor= for older entries")


class LedgerQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=64)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        return int(text.removeprefix(_CURSOR_PREFIX))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(400, "the cursor is not valid; start again without it") from None


def build(pool: Pool) -> Routes:
    routes = Routes()

    @routes.get("/api/wallet/balance", response=Balance, auth=USER)
    async def balance(call: Call) -> web.StreamResponse:
        """The caller's coin balance."""
        coins, updated_at = await store.balance(pool, call.user.user_id)
        return json_response(Balance(user_id=call.user.user_id, coins=coins, updated_at=updated_at))

    @routes.get("/api/wallet/ledger", query=LedgerQuery, response=LedgerPage, auth=USER)
    async def ledger(call: Call) -> web.StreamResponse:
        """The caller's ledger entries, newest first."""
        query = call.query(LedgerQuery)
        before = decode_cursor(query.cursor) if query.cursor else None
        # One extra row says whether another page exists.
        rows = await store.entries_page(
            pool, call.user.user_id, before_seq=before, limit=query.limit + 1
        )
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return json_response(
            LedgerPage(
                entries=[
                    LedgerEntry(
                        entry_id=str(e.entry_id),
                        kind=e.kind,
                        coins=e.coins,
                        payment_id=e.payment_id,
                        refund_id=e.refund_id,
                        balance_after=e.balance_after,
                        shortfall=e.shortfall,
                        created_at=e.created_at,
                    )
                    for e in page
                ],
                next_cursor=encode_cursor(page[-1].seq) if more else None,
            )
        )

    return routes
