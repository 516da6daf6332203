"""Webhook dedupe inside the window, a 200 that refuses an event older than it, and the migration
that partitions a webhook_deliveries table with rows by day."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from payments_testkit import Api
from pydantic import ValidationError

from payments import store
from payments.store import Delivery
from rtmn_fakes.razorpay import RazorpayFake, build_webhook
from rtmn_fakes.stripe import StripeFake, build_event, sign_stripe_webhook
from rtmn_shared.dedupe import DedupeWindow
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.partitions import keep_partitions, partitions_of
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import Suite, provision_for_tests

Conn = asyncpg.Connection  # type: ignore[type-arg]

DAY = 86_400
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
LEGACY = ServiceInfo("paydays", 0)


def days_ago(days: float) -> int:
    return int(time.time() - days * DAY)


async def test_a_retry_two_days_later_is_still_a_duplicate(
    api: Api, stripe: StripeFake, user: str
) -> None:
    # Stripe's retries span 3 days (Razorpay's 24 h: test_razorpay_replays.py).
    created = await api.created(user, gateway="stripe")
    intent = stripe.succeed(created["gateway_order_id"])
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    body = build_event("payment_intent.succeeded", intent, event_id=event_id, created=days_ago(2))
    header = {"Stripe-Signature": sign_stripe_webhook(body, api.stripe_webhook_secret)}

    first = await api.client.post("/api/webhooks/stripe", data=body, headers=header)
    again = await api.client.post("/api/webhooks/stripe", data=body, headers=header)

    assert [(await r.json())["status"] for r in (first, again)] == ["processed", "duplicate"]
    assert len(await api.events(created["payment_id"], "payment.success")) == 1


async def test_a_razorpay_event_past_the_window_is_answered_200_refused_and_changes_nothing(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    created, paid = await api.paid(user)
    body = build_webhook("payment.captured", payment=paid, created_at=days_ago(9))

    response = await api.razorpay_webhook(body, event_id="evt_too_old_rzp")

    # 2xx on purpose: a retry cannot make the event younger, and Razorpay disables an endpoint
    # that keeps failing.
    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "refused"
    assert "past the dedupe window" in answer["reason"]
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.events(created["payment_id"]) == []
    assert await api.deliveries_recorded("evt_too_old_rzp") == 0


async def test_a_stripe_event_past_the_window_is_refused_though_freshly_signed(
    api: Api, stripe: StripeFake, user: str
) -> None:
    created = await api.created(user, gateway="stripe")
    intent = stripe.succeed(created["gateway_order_id"])
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    body = build_event("payment_intent.succeeded", intent, event_id=event_id, created=days_ago(8))
    header = sign_stripe_webhook(body, api.stripe_webhook_secret)  # a resend signs anew

    response = await api.client.post(
        "/api/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )

    assert response.status == 200
    assert (await response.json())["status"] == "refused"
    assert (await api.get(created["payment_id"]))["status"] == "created"
    assert await api.deliveries_recorded(event_id) == 0


def test_a_window_shorter_than_stripes_retries_stops_start_up(api: Api) -> None:
    with pytest.raises(ValidationError, match="Stripe retries a webhook for 3 days"):
        api.settings(dedupe_window_days=2)
    assert api.settings(dedupe_window_days=3).dedupe_window() == DedupeWindow(3)


@pytest.fixture
async def legacy(suite: Suite, admin: Conn) -> AsyncIterator[Conn]:
    """A schema with payments' tables as they were before webhook_deliveries had days."""
    await provision_for_tests(suite.database, [LEGACY])
    await admin.execute("DROP SCHEMA IF EXISTS paydays CASCADE")
    await admin.execute("CREATE SCHEMA paydays AUTHORIZATION rtmn_paydays")
    conn = await asyncpg.connect(
        suite.database_url, user=LEGACY.role, server_settings={"search_path": LEGACY.schema}
    )
    before = [m for m in discover(MIGRATIONS) if m.name < "0002_webhook_deliveries_by_day.sql"]
    await migrate(conn, LEGACY.schema, before)
    yield conn
    await conn.close()


async def test_the_migration_keeps_the_deliveries_it_found_deduplicated(legacy: Conn) -> None:
    seen = [f"evt_{uuid.uuid4().hex[:14]}" for _ in range(3)]
    await legacy.executemany(
        "INSERT INTO webhook_deliveries (provider, event_id, event_type) VALUES ($1, $2, $3)",
        [("razorpay", event_id, "payment.captured") for event_id in seen],
    )

    await migrate(legacy, LEGACY.schema, discover(MIGRATIONS))

    now = datetime.now(UTC)
    for event_id, age in zip(seen, (0, 1, 3), strict=True):
        retry = Delivery("razorpay", event_id, "payment.captured", now - timedelta(days=age))
        assert not await store.record_delivery(legacy, retry)
    assert await store.record_delivery(legacy, Delivery("razorpay", "evt_new", "x", now))
    ranged, default = await partitions_of(legacy, "webhook_deliveries")
    assert ([p.name for p in ranged], default) == (
        ["webhook_deliveries_legacy"],
        "webhook_deliveries_default",
    )
    kept = await keep_partitions(legacy, DedupeWindow(7), today=now.date())
    assert {name.rsplit("_p", 1)[0] for name in kept.created} == {"inbox", "webhook_deliveries"}
