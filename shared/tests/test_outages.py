"""Outages the event path must ride out: a broker restart mid-stream, a relay killed mid-batch."""

from __future__ import annotations

import asyncio
import subprocess

from demo_events import duplicates, emit, recorder, relay, start
from rtmn_shared.db import Pool
from rtmn_shared.testing.infra import Suite
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
