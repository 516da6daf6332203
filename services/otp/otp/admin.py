"""Operators' routes: see which destination prefixes the pumping defence blocked, allow one again.

They need the `otp:prefixes` scope (a capability of its own, not a general admin right)."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, Field

from otp.pumping import PrefixGuard
from rtmn_shared.web.routes import Call, Routes, json_response

log = logging.getLogger(__name__)

PREFIXES_SCOPE = "otp:prefixes"
PREFIX = Field(pattern=r"^\+\d{2,12}$", description="country code and first national digits")


class BlockedPrefixOut(BaseModel):
    prefix: str
    blocked_at_ms: int


class BlockedPrefixes(BaseModel):
    blocked: list[BlockedPrefixOut]


class AllowPrefix(BaseModel):
    prefix: str = PREFIX


class PrefixAllowed(BaseModel):
    prefix: str
    was_blocked: bool


def add_prefix_routes(routes: Routes, guard: PrefixGuard) -> None:
    @routes.get("/api/otp/admin/prefixes/blocked", response=BlockedPrefixes, auth=PREFIXES_SCOPE)
    async def blocked_prefixes(call: Call) -> web.StreamResponse:
        """Destination prefixes refused for SMS pumping, oldest block first."""
        blocked = await guard.blocked()
        return json_response(
            BlockedPrefixes(
                blocked=[BlockedPrefixOut(prefix=b.prefix, blocked_at_ms=b.blocked_at_ms)
                         for b in blocked]
            )
        )  # fmt: skip

    @routes.post(
        "/api/otp/admin/prefixes/allow", body=AllowPrefix, response=PrefixAllowed,
        auth=PREFIXES_SCOPE,
    )  # fmt: skip
    async def allow_prefix(call: Call) -> web.StreamResponse:
        """Lift a prefix's block and forget its counts: it must collapse anew to be blocked."""
        request = await call.body(AllowPrefix)
        was_blocked = await guard.allow(request.prefix)
        operator = call.caller.user_id if call.caller else "?"
        log.warning(
            "otp destination prefix allowed again",
            extra={"prefix": request.prefix, "operator": operator, "was_blocked": was_blocked},
        )
        return json_response(PrefixAllowed(prefix=request.prefix, was_blocked=was_blocked))
