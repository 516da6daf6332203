"""POST /api/analytics/track: a signed-in client's own events, under the same limits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from analytics.batcher import Batcher
from analytics.client_events import (
    MAX_PROPERTIES,
    Property,
    event_name_problem,
    property_problem,
)
from analytics.domain import AnalyticsEvent, client_insert_id
from rtmn_shared.web.problems import Problem, service_unavailable
from rtmn_shared.web.ratelimit import Limit, RateLimiter
from rtmn_shared.web.routes import USER, Call, Routes, json_response

# GA4 backdates at most 72 hours and Mixpanel refuses events more than an hour ahead.
MAX_AGE = timedelta(hours=72)
MAX_SKEW = timedelta(minutes=5)


class TrackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(description="1-40 lower-case letters, digits or underscores")
    properties: dict[str, StrictBool | StrictInt | StrictFloat | StrictStr] = Field(
        default_factory=dict, max_length=MAX_PROPERTIES
    )
    insert_id: uuid.UUID | None = Field(
        default=None, description="the client's id for this event; a resend with it counts once"
    )
    time: AwareDatetime | None = Field(default=None, description="when it happened; now if absent")

    @field_validator("event")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = event_name_problem(value)
        if problem:
            raise ValueError(f"the event name {problem}")
        return value

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, Property]) -> dict[str, Property]:
        for name, item in value.items():
            problem = property_problem(name, item)
            if problem:
                raise ValueError(f"{name[:40]!r} {problem}")
        return value


class TrackAccepted(BaseModel):
    insert_id: uuid.UUID


def build_routes(batchers: Sequence[Batcher], limiter: RateLimiter, per_minute: int) -> Routes:
    routes = Routes()

    @routes.post(
        "/api/analytics/track", body=TrackBody, response=TrackAccepted, status=202, auth=USER
    )
    async def track(call: Call) -> web.StreamResponse:
        """Queue one client event for every analytics sink."""
        user_id = call.user.user_id
        await limiter.check("track", user_id, Limit(per_minute, 60))
        body = await call.body(TrackBody)
        now = datetime.now(UTC)
        when = body.time or now
        if not now - MAX_AGE <= when <= now + MAX_SKEW:
            raise Problem(422, "time must lie within the last 72 hours, and not ahead")
        if not all(b.has_room() for b in batchers):
            raise service_unavailable("analytics is catching up; try again shortly", retry_after=5)
        insert_id = body.insert_id or uuid.uuid4()
        event = AnalyticsEvent(
            insert_id=client_insert_id(user_id, insert_id),
            name=body.event,
            user_id=user_id,
            time=when,
            properties={**body.properties, "source": "client"},
        )
        for batcher in batchers:
            batcher.enqueue(event)
        return json_response(TrackAccepted(insert_id=insert_id), status=202)

    return routes
