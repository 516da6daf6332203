"""The caller's notification preferences, and the one-click unsubscribe a mail client POSTs."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from notify import consent_store
from notify.consent import (
    DEFAULT_TIME_ZONE,
    ONE_CLICK,
    Category,
    Channel,
    UnsubscribeLinks,
    known_time_zone,
)
from rtmn_shared.db import Pool
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import USER, Call, Routes, json_response


class PreferenceOut(BaseModel):
    category: str
    channel: str
    enabled: bool
    locked: bool = Field(description="transactional messages cannot be turned off")
    default: bool


class PreferencesOut(BaseModel):
    time_zone: str = Field(description="IANA zone; quiet hours are 21:00-09:00 there")
    preferences: list[PreferenceOut]


class PreferenceIn(BaseModel):
    category: Category
    channel: Channel
    enabled: bool


class PreferencesIn(BaseModel):
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    preferences: list[PreferenceIn] = Field(default_factory=list, max_length=64)


class UnsubscribedOut(BaseModel):
    category: str
    channel: str
    enabled: bool


def add_consent_routes(routes: Routes, unit: UnitOfWork, links: UnsubscribeLinks) -> None:
    pool = unit.pool

    @routes.get("/api/notify/preferences", response=PreferencesOut, auth=USER)
    async def get_preferences(call: Call) -> web.StreamResponse:
        """The caller's preference for every category and channel, and their time zone."""
        return json_response(await _current(pool, call.user.user_id))

    @routes.put("/api/notify/preferences", body=PreferencesIn, response=PreferencesOut, auth=USER)
    async def put_preferences(call: Call) -> web.StreamResponse:
        """Change some of the caller's preferences (the rest keep theirs) and time zone."""
        body = await call.body(PreferencesIn)
        await _refuse_bad(pool, body)
        # The same pair named twice: the last one wins, as if sent one after the other.
        last = {(p.category, p.channel): p.enabled for p in body.preferences}
        changes = [(category, channel, on) for (category, channel), on in last.items()]
        async with pool.acquire() as conn, conn.transaction():
            await consent_store.set_preferences(conn, call.user.user_id, changes, source="user")
            if body.time_zone is not None:
                await consent_store.set_time_zone(conn, call.user.user_id, body.time_zone)
        return json_response(await _current(pool, call.user.user_id))

    @routes.post("/api/notify/unsubscribe/{token}", response=UnsubscribedOut)
    async def one_click_unsubscribe(call: Call) -> web.StreamResponse:
        """RFC 8058 one-click unsubscribe: the signed link in a promotional mail's
        List-Unsubscribe header, POSTed with `List-Unsubscribe=One-Click`; no login."""
        found = links.read(call.path("token"))
        if found is None:
            raise Problem(404, "this unsubscribe link is not valid")
        form = await call.request.post()
        if form.get("List-Unsubscribe") != ONE_CLICK.partition("=")[2]:
            raise Problem(400, f"the body must be {ONE_CLICK!r} (RFC 8058)")
        async with pool.acquire() as conn:
            await consent_store.set_preferences(
                conn, found.user_id, [(found.category, "email", False)], source="one-click"
            )
        out = UnsubscribedOut(category=found.category, channel="email", enabled=False)
        return json_response(out)


async def _current(pool: Pool, user_id: str) -> PreferencesOut:
    tz, rows = await consent_store.preferences(pool, user_id)
    return PreferencesOut(
        time_zone=tz or DEFAULT_TIME_ZONE,
        preferences=[PreferenceOut(**vars(r)) for r in rows],
    )


async def _refuse_bad(pool: Pool, body: PreferencesIn) -> None:
    """Nothing is written unless every change may be made."""
    errors = []
    if body.time_zone is not None and not known_time_zone(body.time_zone):
        errors.append({"field": "time_zone", "message": "not an IANA time zone"})
    locked = await consent_store.locked(pool)
    for i, p in enumerate(body.preferences):
        if not p.enabled and (p.category, p.channel) in locked:
            message = f"{p.category} {p.channel} messages cannot be turned off"
            errors.append({"field": f"preferences.{i}.enabled", "message": message})
    if errors:
        raise Problem(422, errors[0]["message"], errors=errors)
