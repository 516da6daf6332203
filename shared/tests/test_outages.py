"""Outages the event path must ride out: a broker restart mid-stream, a relay killed mid-batch."""

from __future__ import annotations

import asyncio
import subprocess

from demo_events import duplicates, emit, recorder, relay, start
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.testing.infra import Suite, rabbitmqctl
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


def rabbitmq(command: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", command], check=True, capture_output=True, timeout=120)


async def test_a_broker_restart_mid_stream_loses_nothing_and_applies_each_once(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("ledger"), group="restart")
    background(relay(clean_demo, suite, poll_seconds=0.2).run())
    sent: list[object] = []
    for _ in range(5):
        sent += await emit(clean_demo, 100)
    await asyncio.to_thread(rabbitmq, "stop_app")
    try:
        for _ in range(5):  # committed while the broker is down: they wait in the outbox
            sent += await emit(clean_demo, 100)
    finally:
        await asyncio.to_thread(rabbitmq, "start_app")
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) >= 1000 FROM effects"),
        timeout=90,
        message="all 1,000 events applied",
    )
    rows = await clean_demo.fetchrow(
        "SELECT count(*) AS total, count(DISTINCT event_id) AS distinct_ids FROM effects"
    )
    assert (rows["total"], rows["distinct_ids"]) == (1000, 1000)
    # The consumer may apply an event before the relay has marked its row: wait for the marks.
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
        timeout=30,
        message="the outbox drained",
    )


async def test_a_relay_killed_between_publish_and_mark_is_absorbed_by_the_inbox(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("absorb"), group="killed")
    await emit(clean_demo, 20)
    doomed = relay(clean_demo, suite)
    published = await doomed.publish(await doomed.fetch_pending())  # ...and dies before marking
    await doomed.close()
    assert len(published) == 20
    assert await clean_demo.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 20
    before = duplicates("killed.absorb")
    background(relay(clean_demo, suite).run())  # the restarted relay publishes all 20 again
    await wait_for(lambda: duplicates("killed.absorb") - before >= 20, message="20 duplicates")
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
        message="the outbox drained",
    )
    assert await clean_demo.fetchval("SELECT count(*) FROM effects") == 20


async def test_a_handler_running_when_the_connection_drops_still_finishes_its_work(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    """A handler past a provider's accept must get to record it: the lost connection costs
    only its ack (notify's delivery log then makes the redelivery a no-op)."""
    entered, opened = asyncio.Event(), asyncio.Event()
    calls = 0

    async def send_then_record(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        call = calls
        if call == 1:
            entered.set()
            await opened.wait()  # the provider call, in flight while the connection drops
        await clean_demo.execute(
            "INSERT INTO effects (consumer, event_id) VALUES ($1, $2)",
            f"call-{call}",
            delivery.event.id,
        )

    runner = await start(
        background,
        clean_demo,
        suite,
        Handler("provider", (PaymentSuccess,), send_then_record, inbox=False),
        group="dropped",
    )
    [event_id] = await emit(clean_demo)
    background(relay(clean_demo, suite).run())
    await wait_for(entered.is_set, message="the handler inside its provider call")
    await asyncio.to_thread(
        rabbitmqctl, "close_all_connections", "--vhost", suite.vhost, "connection lost (test)"
    )
    await wait_for(lambda: calls >= 2, timeout=20, message="the redelivery after reconnecting")
    opened.set()
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) FROM effects WHERE consumer = 'call-1'"),
        message="the first call's record",
    )
    assert runner.ready.is_set()
    assert await clean_demo.fetchval("SELECT event_id FROM effects WHERE consumer = 'call-1'") == (
        event_id
    )
