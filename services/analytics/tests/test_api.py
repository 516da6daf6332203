"""POST /api/analytics/track through HTTP, out to the sink fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.app import SERVICE
from analytics.domain import client_insert_id
from analytics.settings import AnalyticsSettings
from rtmn_fakes.ga4 import Ga4Fake
from rtmn_fakes.mixpanel import MixpanelFake
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

TRACK = "/api/analytics/track"


@pytest.fixture
async def api(suite: Suite, mixpanel: MixpanelFake, ga4: Ga4Fake) -> AsyncIterator[RunningService]:
    # `suite` first: it puts the database, broker and JWT key into the environment.
    settings = AnalyticsSettings(
        mixpanel_api_secret=mixpanel.api_secret,
        mixpanel_api_url=mixpanel.url,
        ga4_measurement_id=ga4.measurement_id,
        ga4_api_secret=ga4.api_secret,
        ga4_base_url=ga4.url,
        analytics_flush_seconds=0.05,
        analytics_track_per_minute=5,
    )
    async with running(SERVICE, settings, relay=False, consumers=False) as svc:
        yield svc


def imported(fake: MixpanelFake) -> dict[str, dict[str, Any]]:
    """What Mixpanel keeps: one event per $insert_id, however many copies arrived."""
    return {event["properties"]["$insert_id"]: event for event in fake.events}


def user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


async def test_a_client_event_reaches_both_sinks_as_the_caller(
    api: RunningService, suite: Suite, mixpanel: MixpanelFake, ga4: Ga4Fake
) -> None:
    caller = user()
    body = {"event": "add_to_cart", "properties": {"product_id": "p1", "quantity": 2}}
    response = await api.client.post(TRACK, json=body, headers=suite.bearer(caller))
    assert response.status == 202
    insert_id = client_insert_id(caller, uuid.UUID((await response.json())["insert_id"]))
    record = await wait_for(lambda: imported(mixpanel).get(insert_id), message="mixpanel import")
    assert record["event"] == "add_to_cart"
    assert record["properties"]["distinct_id"] == caller
    assert record["properties"]["quantity"] == 2
    assert record["properties"]["source"] == "client"
    collected = await wait_for(
        lambda: [e for e in ga4.events if e.get("user_id") == caller], message="ga4 collect"
    )
    assert collected[0]["name"] == "add_to_cart"


async def test_a_resent_client_event_counts_once(
    api: RunningService, suite: Suite, mixpanel: MixpanelFake
) -> None:
    caller, insert_id = user(), uuid.uuid4()
    body = {"event": "screen_view", "insert_id": str(insert_id), "properties": {"screen": "home"}}
    headers = suite.bearer(caller)
    sent = client_insert_id(caller, insert_id)
    for sends in (1, 2):
        response = await api.client.post(TRACK, json=body, headers=headers)
        assert response.status == 202
        assert (await response.json())["insert_id"] == str(insert_id)
        await wait_for(
            lambda sends=sends: mixpanel.insert_ids().count(sent) == sends, message="send"
        )
    assert [i for i in imported(mixpanel) if i == sent] == [sent]


async def test_another_users_insert_id_neither_drops_nor_stands_for_their_event(
    api: RunningService, suite: Suite, mixpanel: MixpanelFake
) -> None:
    # The second user copies the first's id (seen on a shared device, in a log, ...).
    insert_id = str(uuid.uuid4())
    callers = [user(), user()]
    for caller in callers:
        body = {"event": "screen_view", "insert_id": insert_id, "properties": {"screen": caller}}
        response = await api.client.post(TRACK, json=body, headers=suite.bearer(caller))
        assert response.status == 202

    def kept() -> list[str]:
        return sorted(e["properties"]["distinct_id"] for e in imported(mixpanel).values()
                      if e["properties"].get("screen") in callers)  # fmt: skip

    assert await wait_for(lambda: kept() == sorted(callers), message="both users' events")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "signup", "properties": {"contact": "priya@example.com"}}, "properties"),
        ({"event": "signup", "properties": {"phone": "x"}}, "properties"),
        ({"event": "signup", "properties": {f"p{n}": n for n in range(26)}}, "properties"),
        ({"event": "signup", "properties": {"nested": {"a": 1}}}, "properties"),
        ({"event": "payment_success"}, "event"),
        ({"event": "Sign Up"}, "event"),
        ({"event": "signup", "extra": 1}, "extra"),
    ],
)
async def test_events_outside_the_limits_are_refused_with_the_field(
    api: RunningService, suite: Suite, body: dict[str, Any], field: str
) -> None:
    response = await api.client.post(TRACK, json=body, headers=suite.bearer(user()))
    assert response.status == 422
    problem = await response.json()
    assert problem["errors"][0]["field"].split(".")[0] == field


async def test_an_event_older_than_ga4_accepts_is_refused(
    api: RunningService, suite: Suite
) -> None:
    old = (datetime.now(UTC) - timedelta(hours=80)).isoformat()
    response = await api.client.post(
        TRACK, json={"event": "signup", "time": old}, headers=suite.bearer(user())
    )
    assert response.status == 422


async def test_only_a_signed_in_caller_may_track(api: RunningService) -> None:
    response = await api.client.post(TRACK, json={"event": "signup"})
    assert response.status == 401


async def test_a_caller_is_limited_per_minute(api: RunningService, suite: Suite) -> None:
    headers = suite.bearer(user())
    statuses = [
        (await api.client.post(TRACK, json={"event": "tap"}, headers=headers)).status
        for _ in range(6)
    ]
    assert statuses == [202] * 5 + [429]


async def test_readiness_names_each_sink_and_its_mode(api: RunningService) -> None:
    response = await api.client.get("/readyz")
    body = await response.json()
    assert body["providers"] == {"mixpanel": "live", "ga4": "live"}


async def test_without_credentials_both_sinks_are_sandboxes_and_say_so(suite: Suite) -> None:
    async with running(SERVICE, AnalyticsSettings(), relay=False, consumers=False) as svc:
        ready = await (await svc.client.get("/readyz")).json()
        assert ready["providers"] == {"mixpanel": "sandbox", "ga4": "sandbox"}
        response = await svc.client.post(
            TRACK, json={"event": "signup"}, headers=suite.bearer(user())
        )
        assert response.status == 202


async def test_the_track_route_is_in_the_openapi_document(api: RunningService) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    operation = document["paths"]["/api/analytics/track"]["post"]
    assert "202" in operation["responses"]
