"""Domain events from the real broker to the Mixpanel and GA4 fakes, through the whole service."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiormq
import pytest
from aio_pika.abc import AbstractChannel

from analytics.app import SERVICE
from analytics.settings import AnalyticsSettings
from rtmn_fakes.ga4 import Ga4Fake
from rtmn_fakes.mixpanel import MixpanelFake
from rtmn_shared.events.catalogue import (
    NotificationRequested,
    OtpVerified,
    PaymentSuccess,
    UserRegistered,
    WalletCredited,
)
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.suite import EXCHANGE
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

QUEUES = ("analytics.forward",)
EMAIL = "priya@example.com"
PHONE = "+919876543210"


def settings(mixpanel: MixpanelFake, ga4: Ga4Fake, **overrides: Any) -> AnalyticsSettings:
    values: dict[str, Any] = {
        "mixpanel_api_secret": mixpanel.api_secret,
        "mixpanel_project_token": "mp-project-token",
        "mixpanel_api_url": mixpanel.url,
        "mixpanel_batch_events": 200,
        "ga4_measurement_id": ga4.measurement_id,
        "ga4_api_secret": ga4.api_secret,
        "ga4_base_url": ga4.url,
        "analytics_flush_seconds": 0.2,
        "analytics_send_attempts": 3,
        "analytics_backoff_first_seconds": 0.05,
        "analytics_backoff_cap_seconds": 0.2,
    }
    return AnalyticsSettings(**(values | overrides))


@pytest.fixture
async def service(
    mixpanel: MixpanelFake, ga4: Ga4Fake, channel: AbstractChannel, request: pytest.FixtureRequest
) -> AsyncIterator[RunningService]:
    overrides = getattr(request, "param", {})
    async with running(SERVICE, settings(mixpanel, ga4, **overrides), relay=False) as svc:
        yield svc
    await drop_queues(channel)


async def drop_queues(channel: AbstractChannel) -> None:
    """The queues outlive the consumers: drop them so no event of one test reaches the next."""
    for name in QUEUES:
        for queue in (name, f"{name}.dlq", f"{name}.retry.100ms", f"{name}.retry.300ms"):
            await channel.queue_delete(queue)


def domain_events(count: int, run: str) -> list[CloudEvent]:
    """A mix of every kind the mapping treats differently, ids unique to this run."""
    made: list[CloudEvent] = []
    for n in range(count):
        user = f"{run}-u{n % 10}"
        data: EventData
        match n % 5:
            case 0 | 1:
                data = PaymentSuccess(
                    payment_id=f"{run}-pay{n}",
                    order_id=f"ord{n}",
                    order_number=f"R{n}",
                    user_id=user,
                    merchant_id="m1",
                    amount=49_950,
                    currency="INR",
                    gateway="razorpay",
                    gateway_payment_id=f"pay_rzp_{n}",
                    paid_at=datetime.now(UTC),
                )
            case 2:
                data = WalletCredited(
                    entry_id=f"{run}-e{n}",
                    user_id=user,
                    coins=50,
                    reason="cashback",
                    reference=f"pay{n}",
                    balance_after=50,
                )
            case 3:
                data = UserRegistered(
                    user_id=user, email=EMAIL, phone=PHONE, first_name="Priya", tier="gold"
                )
            case _:
                data = OtpVerified(phone_hash="ab" * 32, purpose="login")
        made.append(CloudEvent.of(data, source="rtmn/test"))
    return made


async def publish(producers: Producers, events: list[CloudEvent]) -> None:
    await producers.publish(*events)


def ids(events: list[CloudEvent]) -> set[str]:
    return {str(event.id) for event in events}


def ours(fake: MixpanelFake, expected: set[str]) -> list[str]:
    return [i for i in fake.insert_ids() if i in expected]


def imported(fake: MixpanelFake) -> dict[str, dict[str, Any]]:
    """What Mixpanel keeps: one event per $insert_id, however many copies arrived."""
    return {event["properties"]["$insert_id"]: event for event in fake.events}


async def test_a_thousand_events_reach_mixpanel_in_batches_each_once_and_redelivery_adds_nothing(
    producers: Producers,
    service: RunningService,
    mixpanel: MixpanelFake,
    ga4: Ga4Fake,
    channel: AbstractChannel,
) -> None:
    events = domain_events(1000, uuid.uuid4().hex[:8])
    expected = ids(events)
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= 1000, timeout=30, message="1000")

    imports = mixpanel.requests_to("/import")
    sizes = [len(r.json) for r in imports]
    assert len(sizes) >= 5, sizes  # batches of at most 200, not one request per event
    assert max(sizes) <= 200
    assert set(Counter(ours(mixpanel, expected)).values()) == {1}
    kept = {i for i in imported(mixpanel) if i in expected}
    # Every event of a user was imported. Events of no user carry distinct_id "" as Mixpanel
    # documents; the shared fake refuses that value, and a refused record is never resent.
    assert {str(e.id) for e in events if e.type != "otp.verified"} <= kept
    bodies = b"".join(r.body for r in imports)
    assert EMAIL.encode() not in bodies
    assert PHONE[3:].encode() not in bodies
    assert b"ab" * 32 not in bodies
    sample = next(r for r in imported(mixpanel).values() if r["event"] == "payment_success")
    assert sample["properties"]["amount"] == 49_950
    assert sample["properties"]["revenue"] == 499.5
    assert sample["properties"]["currency"] == "INR"
    assert sample["properties"]["token"] == "mp-project-token"

    # The broker hands every event over again, as after a consumer crash before its acks.
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= 2000, timeout=30, message="again")
    assert set(Counter(ours(mixpanel, expected)).values()) == {2}  # once per delivery, no retry
    assert {i for i in imported(mixpanel) if i in expected} == kept  # no new insert ids

    collects = ga4.requests_to("/mp/collect")
    assert collects
    assert max(len(r.json["events"]) for r in collects) <= 25
    assert ga4.violations == []


async def test_mixpanel_answering_429_then_200_loses_and_duplicates_nothing(
    producers: Producers, service: RunningService, mixpanel: MixpanelFake, channel: AbstractChannel
) -> None:
    mixpanel.fail_next(2, 429, body={"code": 429, "error": "rate limited"}, path="/import")
    events = domain_events(300, uuid.uuid4().hex[:8])
    expected = ids(events)
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= 300, timeout=30, message="all 300")
    statuses = Counter(r.status for r in mixpanel.requests_to("/import"))
    assert statuses[429] == 2
    assert Counter(ours(mixpanel, expected)) == Counter(expected)


@pytest.mark.parametrize("service", [{"analytics_send_attempts": 1}], indirect=True)
async def test_a_batch_mixpanel_never_took_comes_back_through_the_broker(
    producers: Producers, service: RunningService, mixpanel: MixpanelFake, channel: AbstractChannel
) -> None:
    # One attempt per delivery: the first delivery's 503 leaves the messages unacknowledged
    # work for the retry queue, and the redelivery succeeds.
    mixpanel.fail_next(1, 503, path="/import")
    events = domain_events(50, uuid.uuid4().hex[:8])
    expected = ids(events)
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= 50, timeout=30, message="all 50")
    assert Counter(r.status for r in mixpanel.requests_to("/import"))[503] == 1
    assert Counter(ours(mixpanel, expected)) == Counter(expected)


async def test_a_consumer_stopped_before_mixpanel_answered_gets_its_messages_again(
    producers: Producers, mixpanel: MixpanelFake, ga4: Ga4Fake, channel: AbstractChannel
) -> None:
    # Acks wait for the batch: stopped while the request is in flight, nothing was acknowledged,
    # so the broker hands every message to the next consumer, and the insert ids make the second
    # copy harmless.
    mixpanel.delay_next(1, 1.0, path="/import")
    events = [e for e in domain_events(25, uuid.uuid4().hex[:8]) if e.type != "otp.verified"]
    expected = ids(events)
    try:
        async with running(SERVICE, settings(mixpanel, ga4), relay=False):
            await publish(producers, events)
            await wait_for(lambda: mixpanel.requests_to("/import"), message="a batch in flight")
            assert not imported(mixpanel)
        assert set(imported(mixpanel)) == expected  # accepted after all, but never acknowledged
        async with running(SERVICE, settings(mixpanel, ga4), relay=False):
            await wait_for(lambda: len(ours(mixpanel, expected)) == 2 * len(expected))
        assert Counter(ours(mixpanel, expected)) == Counter(dict.fromkeys(expected, 2))
        assert set(imported(mixpanel)) == expected
    finally:
        await drop_queues(channel)


async def test_a_ga4_that_is_down_does_not_stop_mixpanel(
    producers: Producers,
    service: RunningService,
    mixpanel: MixpanelFake,
    ga4: Ga4Fake,
    channel: AbstractChannel,
) -> None:
    ga4.fail_next(1_000_000, 503)
    events = domain_events(300, uuid.uuid4().hex[:8])
    expected = ids(events)
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= 300, timeout=30, message="mixpanel")
    assert ga4.requests_to("/mp/collect")  # GA4 was tried, and kept failing
    assert ga4.events == []
    assert {r.status for r in ga4.requests_to("/mp/collect")} <= {503, None}


async def test_commands_and_unmapped_types_are_acknowledged_without_reaching_a_sink(
    producers: Producers, service: RunningService, mixpanel: MixpanelFake, channel: AbstractChannel
) -> None:
    run = uuid.uuid4().hex[:8]
    command = CloudEvent.of(
        NotificationRequested(request_id=run, user_ids=["u1"], title="Hi", message="Hello"),
        source="rtmn/test",
    )
    marker = domain_events(1, run)
    await publish(producers, [command, *marker])
    await wait_for(lambda: ours(mixpanel, ids(marker)), timeout=10, message="the marker event")
    assert str(command.id) not in imported(mixpanel)


@pytest.mark.parametrize("service", [{"analytics_send_attempts": 1}], indirect=True)
async def test_a_sink_that_was_down_gets_its_events_later_and_the_other_never_twice(
    producers: Producers,
    service: RunningService,
    mixpanel: MixpanelFake,
    ga4: Ga4Fake,
    channel: AbstractChannel,
) -> None:
    # One queue feeds both sinks: GA4's 503 sends the events round again for GA4 alone.
    ga4.fail_next(1, 503)
    events = [e for e in domain_events(20, uuid.uuid4().hex[:8]) if e.type == "payment.success"]
    expected = ids(events)
    await publish(producers, events)
    await wait_for(lambda: len(ours(mixpanel, expected)) >= len(expected), message="mixpanel")
    payments = payment_ids(events)
    await wait_for(
        lambda: payments <= set(ga4_payments(ga4)), timeout=20, message="ga4 after its redelivery"
    )
    assert Counter(ours(mixpanel, expected)) == Counter(expected)
    assert Counter(p for p in ga4_payments(ga4) if p in payments) == Counter(payments)


async def test_the_retired_per_sink_queues_are_folded_into_the_forward_group(
    producers: Producers, mixpanel: MixpanelFake, ga4: Ga4Fake, channel: AbstractChannel
) -> None:
    # A broker upgraded from one group per sink still holds their queues and what waits there.
    run = uuid.uuid4().hex[:8]
    waiting = [e for e in domain_events(10, run) if e.type == "payment.success"]
    dead = [e for e in domain_events(5, run + "d") if e.type == "payment.success"]
    old = await channel.declare_queue("analytics.mixpanel", durable=True)
    await old.bind(EXCHANGE, "#")
    await channel.declare_queue("analytics.ga4.dlq", durable=True)
    await send_to_queue(producers, "analytics.mixpanel", waiting)
    await send_to_queue(producers, "analytics.ga4.dlq", dead)
    try:
        async with running(SERVICE, settings(mixpanel, ga4), relay=False):
            await wait_for(
                lambda: ids(waiting) <= set(ours(mixpanel, ids(waiting))), message="folded"
            )
            for name in ("analytics.mixpanel", "analytics.ga4.dlq"):
                await wait_for(lambda n=name: gone(channel, n), message=f"{name} deleted")
        assert not payment_ids(waiting) & set(ga4_payments(ga4))  # they waited for Mixpanel only
        forward_dlq = await channel.declare_queue("analytics.forward.dlq", passive=True)
        parked = [await forward_dlq.get() for _ in dead]
        assert {m.message_id for m in parked} == ids(dead)
        assert {(m.headers or {}).get("x-rtmn-sinks") for m in parked} == {"ga4"}
    finally:
        await drop_queues(channel)


async def send_to_queue(producers: Producers, queue: str, events: list[CloudEvent]) -> None:
    await producers.publish(*events, queue=queue)


async def gone(channel: AbstractChannel, name: str) -> bool:
    connection = (await channel.get_underlay_channel()).connection
    probe = await connection.channel()
    try:
        await probe.queue_declare(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return True
    await probe.close()
    return False


def payment_ids(events: list[CloudEvent]) -> set[str]:
    return {str(event.data["payment_id"]) for event in events}


def ga4_payments(fake: Ga4Fake) -> list[str]:
    """GA4 keeps no event id: the payment id each payment_success carried."""
    return [str(e["params"]["payment_id"]) for e in fake.events if e["name"] == "payment_success"]
