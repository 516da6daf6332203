"""The event path end to end on the real PostgreSQL and RabbitMQ: outbox → relay → consumers."""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
import asyncpg
import pytest

from demo_events import duplicates, effects, emit, outbox, payment, recorder, relay, start
from rtmn_shared.db import Pool
from rtmn_shared.events.wakeup import IN_PROCESS, LocalRelays, RelayWakeup, UnitOfWork
from rtmn_shared.metrics import EVENTS_PUBLISHED
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


async def test_a_rolled_back_transaction_publishes_nothing(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("audit"), group="rollback")
    with pytest.raises(RuntimeError, match="state change failed"):
        async with clean_demo.acquire() as conn, conn.transaction():
            await outbox.add(conn, payment())
            raise RuntimeError("state change failed")
    committed = await emit(clean_demo)
    background(relay(clean_demo, suite).run())
    await wait_for(lambda: effects(clean_demo, "audit"), message="the committed event")
    assert await effects(clean_demo, "audit") == committed
    assert await clean_demo.fetchval("SELECT count(*) FROM outbox") == 1


async def test_outbox_rows_need_a_transaction(clean_demo: Pool) -> None:
    async with clean_demo.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the state change"):
            await outbox.add(conn, payment())


async def test_one_event_reaches_two_groups_once_each_even_when_delivered_twice(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(
        background, clean_demo, suite, recorder("wallet"), recorder("email"), group="fanout"
    )
    [event_id] = await emit(clean_demo)
    background(relay(clean_demo, suite).run())
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 2 FROM effects"),
        message="both groups applied",
    )
    # The broker hands the same message over again, as it does after a lost ack.
    body = await clean_demo.fetchval("SELECT payload::text FROM outbox")
    connection = await aio_pika.connect(suite.amqp_url)
    channel = await connection.channel()
    for queue in ("fanout.wallet", "fanout.email"):
        await channel.default_exchange.publish(
            aio_pika.Message(body.encode(), message_id=str(event_id)), routing_key=queue
        )
    await connection.close()
    await wait_for(
        lambda: duplicates("fanout.wallet") >= 1 and duplicates("fanout.email") >= 1,
        message="both redeliveries seen",
    )
    assert await effects(clean_demo, "wallet") == [event_id]
    assert await effects(clean_demo, "email") == [event_id]


async def test_a_commit_through_the_unit_of_work_wakes_another_process_relay_at_once(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("woken"), group="wakeup")
    # The relay's poll is 30 s: only the wake-up after commit can bring the event in time. It
    # leads elsewhere (a registry of its own stands for another process), so a NOTIFY must.
    background(relay(clean_demo, suite, poll_seconds=30, local=LocalRelays()).run())
    await wait_for(
        lambda: clean_demo.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'ClientRead' "
            "AND query LIKE 'LISTEN%'"
        ),
        message="the relay listening",
    )
    wakeup = RelayWakeup(lambda: asyncpg.connect(suite.database_url, user="rtmn_demo"), "demo")
    background(wakeup.run())
    unit = UnitOfWork(clean_demo, wakeup.poke)
    async with unit.transaction() as conn:
        event = await outbox.add(conn, payment())
    await wait_for(lambda: effects(clean_demo, "woken"), timeout=5, message="the woken relay")
    assert await effects(clean_demo, "woken") == [event.id]


async def test_a_commit_wakes_a_relay_of_the_same_process_without_a_notify(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("local"), group="local-wakeup")
    background(relay(clean_demo, suite, poll_seconds=30).run())
    await wait_for(lambda: IN_PROCESS.wake("demo"), message="the relay leading here")

    async def no_database() -> asyncpg.Connection[asyncpg.Record]:
        raise AssertionError("a NOTIFY was attempted")

    wakeup = RelayWakeup(no_database, "demo")
    background(wakeup.run())
    async with UnitOfWork(clean_demo, wakeup.poke).transaction() as conn:
        event = await outbox.add(conn, payment())
    await wait_for(lambda: effects(clean_demo, "local"), timeout=5, message="the woken relay")
    assert await effects(clean_demo, "local") == [event.id]


async def test_a_published_row_is_marked_sent_by_the_next_read_or_when_the_relay_stops(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    await start(background, clean_demo, suite, recorder("marks"), group="marks")
    unmarked = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    all_marked = "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"
    polling = background(relay(clean_demo, suite, poll_seconds=0.1).run())
    await emit(clean_demo)
    await wait_for(lambda: effects(clean_demo, "marks"), message="the first event")
    await wait_for(lambda: clean_demo.fetchval(all_marked), message="marked by a poll")
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling  # its lock released, so the next relay leads at once
    # A relay that hears of nothing more marks its last batch on the way out.
    idle = background(relay(clean_demo, suite, poll_seconds=30).run())
    confirms = published()
    [second] = await emit(clean_demo)

    async def applied() -> bool:
        return second in await effects(clean_demo, "marks")

    await wait_for(applied, message="the second event")
    # The consumer (in this process) may apply it before the relay has taken its confirm in; a
    # relay stopped then has nothing confirmed to mark, and publishes it again next time.
    await wait_for(lambda: published() > confirms, message="the relay to take the confirm")
    assert await clean_demo.fetchval(unmarked) == 1
    idle.cancel()
    await wait_for(lambda: clean_demo.fetchval(all_marked), message="marked on close")


def published() -> float:
    """Every event the relays of this process have had confirmed."""
    return sum(
        sample.value
        for metric in EVENTS_PUBLISHED.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
