"""The consumers' inbox remembers events for the dedupe window; past it, an event is refused
(dead-lettered with the reason), never applied a second time."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import orjson
import pytest

from demo_events import FAST, duplicates, effects, payment, recorder, start
from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.db import Pool
from rtmn_shared.dedupe import DedupeWindow
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.inbox import DEFAULT_INBOX, Inbox, check_window
from rtmn_shared.events.outcomes import GiveUp
from rtmn_shared.events.publishers import AnyPublisher
from rtmn_shared.settings import SettingsError
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for

DAY = timedelta(days=1)


def event_at(moment: datetime, event_id: uuid.UUID | None = None) -> CloudEvent:
    """A payment.success its producer made at `moment` (and a redelivery of it, given its id)."""
    data = payment()
    return CloudEvent(
        id=event_id or uuid.uuid4(),
        source="rtmn/demo",
        type=data.type,
        time=moment,
        data=data.model_dump(mode="json"),
    )


async def publish(suite: Suite, queue: str, *events: CloudEvent | bytes) -> None:
    connection = await aio_pika.connect(suite.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        for event in events:
            body = event if isinstance(event, bytes) else event.to_json()
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    finally:
        await connection.close()


async def inbox_rows(pool: Pool, event: CloudEvent) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event.id)
    return count


async def test_a_redelivered_event_inside_the_window_does_nothing(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("window"), group="inside")
    six_days_old = event_at(datetime.now(UTC) - 6 * DAY)

    await publish(suite, "inside.window", six_days_old, six_days_old)

    await wait_for(lambda: duplicates("inside.window") >= 1, message="the copy seen as duplicate")
    assert await effects(clean_demo, "window") == [six_days_old.id]
    assert await inbox_rows(clean_demo, six_days_old) == 1


async def test_an_event_past_the_window_is_dead_lettered_with_the_reason_and_changes_nothing(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("window"), group="past")
    fresh = [event_at(datetime.now(UTC)) for _ in range(5)]
    too_old = event_at(datetime.now(UTC) - 9 * DAY)

    await publish(suite, "past.window", fresh[0], too_old, *fresh[1:])

    [letter] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "past.window", 10, replay=False),
        message="the old event dead-lettered",
    )
    assert letter["attempts"] == 1  # refused at once: no retry can make it younger
    assert "past the dedupe window" in str(letter["last_error"])
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 5 FROM effects"),
        message="the fresh events applied beside it",
    )
    assert too_old.id not in await effects(clean_demo, "window")
    assert await inbox_rows(clean_demo, too_old) == 0

    # An operator's replay meets the same refusal: it goes back to the DLQ, still unapplied.
    await dead_letters(suite.amqp_url, "past.window", 10, replay=True)
    [again] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "past.window", 10, replay=False),
        message="the replayed old event dead-lettered again",
    )
    assert "past the dedupe window" in str(again["last_error"])
    assert too_old.id not in await effects(clean_demo, "window")


async def test_an_applied_event_redelivered_after_the_window_is_refused_not_applied_twice(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    shift = [timedelta(0)]
    inbox = Inbox(DedupeWindow(7), clock=lambda: datetime.now(UTC) + shift[0])
    runner = ConsumerRunner(
        service="later",
        pool=clean_demo,
        amqp_url=suite.amqp_url,
        publishers=AnyPublisher(),
        handlers=[recorder("window")],
        inbox=inbox,
    )
    background(runner.run())
    await wait_for(runner.ready.is_set, message="consumers ready")
    event = event_at(datetime.now(UTC))
    await publish(suite, "later.window", event)
    await wait_for(lambda: effects(clean_demo, "window"), message="the event applied")

    shift[0] = 9 * DAY  # its partition may be gone by now
    await publish(suite, "later.window", event)

    [letter] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "later.window", 10, replay=False),
        message="the late redelivery dead-lettered",
    )
    assert "past the dedupe window" in str(letter["last_error"])
    assert await effects(clean_demo, "window") == [event.id]


async def test_an_event_without_its_own_time_is_dead_lettered(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    async def never(delivery: Delivery) -> None:
        raise AssertionError("an event without a time must not reach the handler")

    await start(
        background,
        clean_demo,
        suite,
        Handler("timeless", (PaymentSuccess,), never, retry_delays_ms=FAST),
        group="timeless",
    )
    body = event_at(datetime.now(UTC)).model_dump(mode="json", exclude={"time"})

    await publish(suite, "timeless.timeless", orjson.dumps(body))

    [letter] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "timeless.timeless", 10, replay=False),
        message="the timeless event dead-lettered",
    )
    assert "no time" in str(letter["last_error"])


async def test_a_batch_holding_an_event_past_the_window_records_none_of_it(
    clean_demo: Pool,
) -> None:
    fresh, too_old = event_at(datetime.now(UTC)), event_at(datetime.now(UTC) - 9 * DAY)

    async with clean_demo.acquire() as conn:
        with pytest.raises(GiveUp, match="past the dedupe window"):
            async with conn.transaction():
                await DEFAULT_INBOX.record_batch(conn, "demo.batch", [fresh, too_old])
        # The runner then applies them one at a time: only the old one is refused.
        async with conn.transaction():
            assert await DEFAULT_INBOX.record_batch(conn, "demo.batch", [fresh]) == {fresh.id}
            assert await DEFAULT_INBOX.record_batch(conn, "demo.batch", [fresh]) == set()

    assert await inbox_rows(clean_demo, too_old) == 0


def test_a_window_too_short_for_the_retries_and_a_replay_stops_start_up() -> None:
    analytics_like = (5_000, 30_000, 120_000, 600_000, 1_800_000)  # about 43 minutes

    check_window(DedupeWindow(7), {"analytics.forward": analytics_like})
    check_window(DedupeWindow(2), {"analytics.forward": analytics_like})
    with pytest.raises(SettingsError, match="DEDUPE_WINDOW_DAYS=1 is too short for analytics"):
        check_window(DedupeWindow(1), {"analytics.forward": analytics_like})


def test_the_consumers_of_a_service_refuse_to_start_with_a_window_too_short(suite: Suite) -> None:
    env = {**os.environ, **suite.environ(), "DEDUPE_WINDOW_DAYS": "1"}

    started = subprocess.run(
        [sys.executable, "-m", "wallet", "consumers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.returncode != 0
    assert started.stderr.strip() == (
        "configuration error: DEDUPE_WINDOW_DAYS=1 is too short for credit-cashback: its "
        "retries last 3 min, and its dead letters need a day more to be replayed"
    )
