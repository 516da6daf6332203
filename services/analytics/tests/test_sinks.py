"""Each sink against its provider's contract fake: limits, partial failures, retries."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from analytics.domain import AnalyticsEvent
from analytics.providers.base import RetryPolicy
from analytics.providers.ga4 import Ga4Sink
from analytics.providers.mixpanel import MixpanelSink
from rtmn_fakes.ga4 import Ga4Fake
from rtmn_fakes.mixpanel import MixpanelFake

FAST = RetryPolicy(attempts=3, first_seconds=0.01, cap_seconds=0.05)
TIMEOUT = aiohttp.ClientTimeout(total=5)


def events(count: int, users: tuple[str | None, ...] = ("u1",)) -> list[AnalyticsEvent]:
    return [
        AnalyticsEvent(
            insert_id=str(uuid.uuid4()),
            name="payment_success",
            user_id=users[n % len(users)],
            time=datetime.now(UTC),
            properties={"amount": 100, "currency": "INR", "revenue": Decimal("1.00"), "n": n},
        )
        for n in range(count)
    ]


def imported(fake: MixpanelFake) -> dict[str, dict[str, Any]]:
    """What Mixpanel keeps: one event per $insert_id, however many copies arrived."""
    return {event["properties"]["$insert_id"]: event for event in fake.events}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mixpanel_sink(
    fake: MixpanelFake, session: aiohttp.ClientSession, **options: int
) -> MixpanelSink:
    return MixpanelSink(
        session,
        api_url=fake.url,
        authorization=aiohttp.encode_basic_auth(fake.api_secret),
        project_token="tok",
        policy=FAST,
        timeout=TIMEOUT,
        **options,
    )


def ga4_sink(fake: Ga4Fake, session: aiohttp.ClientSession, *, validate: bool = False) -> Ga4Sink:
    return Ga4Sink(
        session,
        base_url=fake.url,
        measurement_id=fake.measurement_id,
        api_secret=fake.api_secret,
        system_client_id="rtmn-server",
        policy=FAST,
        timeout=TIMEOUT,
        validate=validate,
    )


async def test_mixpanel_requests_stay_under_the_size_limit(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    batch = events(100)
    report = await mixpanel_sink(mixpanel, session, max_bytes=5_000).send(batch)
    assert not report.failed
    assert not report.rejected
    imports = mixpanel.requests_to("/import")
    assert len(imports) > 1
    assert max(len(r.body) for r in imports) <= 5_000
    assert set(imported(mixpanel)) == {e.insert_id for e in batch}


async def test_mixpanel_records_it_refused_are_reported_and_the_rest_imported(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    batch = events(5)
    # Mixpanel refuses events dated more than an hour ahead.
    batch[2] = dataclasses.replace(batch[2], time=datetime.now(UTC) + timedelta(hours=2))
    with caplog.at_level(logging.WARNING):
        report = await mixpanel_sink(mixpanel, session).send(batch)
    assert set(report.rejected) == {batch[2].insert_id}
    assert "properties.time" in report.rejected[batch[2].insert_id]
    assert not report.failed
    assert len(imported(mixpanel)) == 4
    assert batch[2].insert_id in caplog.text


async def test_mixpanel_429_and_5xx_are_retried_then_reported_as_failed(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    mixpanel.fail_next(1, 429, retry_after=0)
    mixpanel.fail_next(1, 503)
    batch = events(3)
    report = await mixpanel_sink(mixpanel, session).send(batch)
    assert not report.failed
    assert len(imported(mixpanel)) == 3

    mixpanel.fail_next(3, 503)
    later = events(2)
    report = await mixpanel_sink(mixpanel, session).send(later)
    assert report.failed == {e.insert_id for e in later}
    assert len(mixpanel.requests_to("/import")) == 6


async def test_mixpanel_413_splits_the_batch(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    mixpanel.fail_next(1, 413)
    batch = events(10)
    report = await mixpanel_sink(mixpanel, session).send(batch)
    assert not report.failed
    assert set(imported(mixpanel)) == {e.insert_id for e in batch}
    assert [len(r.json) for r in mixpanel.requests_to("/import")] == [10, 5, 5]


async def test_mixpanel_takes_a_service_account_with_its_project_id(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    sink = MixpanelSink(
        session,
        api_url=mixpanel.url,
        authorization=aiohttp.encode_basic_auth(*mixpanel.service_account),
        project_id=mixpanel.project_id,
        policy=FAST,
        timeout=TIMEOUT,
    )
    batch = events(2)
    report = await sink.send(batch)
    assert not report.failed
    assert set(imported(mixpanel)) == {e.insert_id for e in batch}
    assert mixpanel.requests_to("/import")[0].query == {
        "strict": "1",
        "project_id": mixpanel.project_id,
    }


async def test_events_of_no_user_carry_mixpanels_empty_distinct_id(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    [event] = events(1, users=(None,))
    await mixpanel_sink(mixpanel, session).send([event])
    [request] = mixpanel.requests_to("/import")
    # docs.mixpanel.com: "Set it to the empty string" for server events without a user; a
    # placeholder or a shared synthetic id invents a user and can hit hot-shard limits.
    assert request.json[0]["properties"]["distinct_id"] == ""


async def test_mixpanel_credentials_refused_keep_events_for_a_retry(
    mixpanel: MixpanelFake, session: aiohttp.ClientSession
) -> None:
    sink = MixpanelSink(
        session,
        api_url=mixpanel.url,
        authorization=aiohttp.encode_basic_auth("wrong"),
        policy=FAST,
        timeout=TIMEOUT,
    )
    batch = events(2)
    report = await sink.send(batch)
    assert report.failed == {e.insert_id for e in batch}


async def test_ga4_sends_one_user_per_request_and_at_most_25_events(
    ga4: Ga4Fake, session: aiohttp.ClientSession
) -> None:
    batch = events(120, users=("u1", "u2", None))
    report = await ga4_sink(ga4, session).send(batch)
    assert not report.failed
    assert not report.rejected
    requests = ga4.requests_to("/mp/collect")
    assert max(len(r.json["events"]) for r in requests) == 25
    assert sum(len(r.json["events"]) for r in requests) == 120
    assert ga4.violations == []
    for request in requests:
        assert request.json.get("user_id") in ("u1", "u2", None)
        expected_client = request.json.get("user_id") or "rtmn-server"
        assert request.json["client_id"] == expected_client
    first = requests[0].json["events"][0]
    assert first["params"]["value"] == 1.0
    assert "revenue" not in first["params"]
    assert first["timestamp_micros"] == int(batch[0].time.timestamp() * 1_000_000)


async def test_ga4_check_mode_asks_the_debug_endpoint_and_logs_what_it_says(
    ga4: Ga4Fake, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    bad = AnalyticsEvent(
        insert_id=str(uuid.uuid4()),
        name="Not A Name",
        user_id="u1",
        time=datetime.now(UTC),
        properties={},
    )
    with caplog.at_level(logging.WARNING):
        report = await ga4_sink(ga4, session, validate=True).send([bad])
    assert not report.failed
    assert {r.path for r in ga4.requests} == {"/debug/mp/collect"}  # nothing collected
    assert ga4.events == []
    assert "invalid name" in caplog.text


async def test_ga4_that_stays_down_reports_every_event_failed(
    ga4: Ga4Fake, session: aiohttp.ClientSession
) -> None:
    ga4.fail_next(100, 500)
    batch = events(30)
    report = await ga4_sink(ga4, session).send(batch)
    assert report.failed == {e.insert_id for e in batch}


async def test_ga4_is_not_sent_events_older_than_it_keeps(
    ga4: Ga4Fake, session: aiohttp.ClientSession
) -> None:
    old, fresh = events(2)
    old = dataclasses.replace(old, time=datetime.now(UTC) - timedelta(hours=73))
    report = await ga4_sink(ga4, session).send([old, fresh])
    assert set(report.rejected) == {old.insert_id}
    [request] = ga4.requests_to("/mp/collect")
    assert len(request.json["events"]) == 1
