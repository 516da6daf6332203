"""Deliveries waiting together are applied in one transaction, and a batch never changes what
each delivery's outcome would have been on its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import aio_pika

from demo_events import FAST, duplicates, payment, record
from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outcomes import GiveUp
from rtmn_shared.events.publishers import AnyPublisher
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


class Gate:
    """Holds the only worker inside the first delivery while later ones pile up behind it."""

    def __init__(self) -> None:
        self.first: uuid.UUID | None = None
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_through(self, delivery: Delivery) -> None:
        if self.first is None:
            self.first = delivery.event.id
        if delivery.event.id == self.first:
            self.entered.set()
            await self.opened.wait()


async def pile_up(
    pool: Pool,
    suite: Suite,
    background: Background,
    *,
    group: str,
    events: Sequence[CloudEvent],
    poisoned: frozenset[uuid.UUID] = frozenset(),
) -> None:
    """Starts one worker, holds it in a first delivery, queues `events` behind it, then opens."""
    gate = Gate()

    async def apply(delivery: Delivery) -> None:
        await gate.pass_through(delivery)
        if delivery.event.id in poisoned:
            raise GiveUp("this payment cannot be applied")
        await record(delivery, group)

    handler = Handler("batched", (PaymentSuccess,), apply, retry_delays_ms=FAST)
    runner = ConsumerRunner(
        service=group,
        pool=pool,
        amqp_url=suite.amqp_url,
        handlers=[handler],
        batch_workers=1,
        publishers=AnyPublisher(),
    )
    background(runner.run())
    await wait_for(runner.ready.is_set, message="consumers ready")
    queue = runner.queue_names(handler).main
    connection = await aio_pika.connect(suite.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        for event in [_event(-1)]:
            await channel.default_exchange.publish(_message(event), routing_key=queue)
        await wait_for(gate.entered.is_set, message="the worker held in the first delivery")
        for event in events:
            await channel.default_exchange.publish(_message(event), routing_key=queue)

        async def all_delivered() -> bool:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count == 0

        await wait_for(all_delivered, message="every message handed to the consumer")
    finally:
        await connection.close()
    gate.opened.set()


def _event(n: int) -> CloudEvent:
    return CloudEvent.of(payment(n), source="rtmn/demo")


def _message(event: CloudEvent) -> aio_pika.Message:
    return aio_pika.Message(event.model_dump_json().encode(), message_id=str(event.id))


async def test_deliveries_that_wait_together_commit_in_one_transaction(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    events = [_event(n) for n in range(20)]
    await pile_up(clean_demo, suite, background, group="batches", events=events)
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 21 FROM effects"),
        message="every delivery applied",
    )
    rows = await clean_demo.fetch(
        "SELECT count(*) AS events, count(DISTINCT txid) AS transactions FROM effects "
        "WHERE consumer = 'batches'"
    )
    assert rows[0]["events"] == 21
    # One at a time would take 21 transactions: the held first, then the queued 20 in one or,
    # if the last arrivals came in just after the worker took the others, two.
    assert rows[0]["transactions"] <= 3
    assert await clean_demo.fetchval("SELECT count(*) FROM inbox") == 21


async def test_a_failing_delivery_rolls_its_batch_back_and_only_it_is_dead_lettered(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    events = [_event(n) for n in range(10)]
    bad = events[4].id
    await pile_up(
        clean_demo,
        suite,
        background,
        group="rollback-batch",
        events=events,
        poisoned=frozenset({bad}),
    )

    async def dead() -> list[dict[str, object]]:
        return await dead_letters(suite.amqp_url, "rollback-batch.batched", 10, replay=False)

    [letter] = await wait_for(dead, message="the failing delivery dead-lettered")
    assert letter["message_id"] == str(bad)
    assert "cannot be applied" in str(letter["last_error"])
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 10 FROM effects"),
        message="the nine others and the first applied",
    )
    counts = await clean_demo.fetch(
        "SELECT event_id, count(*) AS n FROM effects GROUP BY event_id HAVING count(*) > 1"
    )
    assert counts == []  # the rolled-back attempt left nothing behind
    assert await clean_demo.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", bad) == 0
    assert await clean_demo.fetchval("SELECT count(*) FROM inbox") == 10


async def test_the_same_event_twice_in_one_batch_is_applied_once(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    twice = _event(7)
    await pile_up(clean_demo, suite, background, group="twice", events=[twice, _event(8), twice])
    await wait_for(
        lambda: duplicates("twice.batched") >= 1, message="the second copy counted as duplicate"
    )
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) >= 3 FROM effects"),
        message="the held delivery applied too",
    )
    assert await clean_demo.fetchval("SELECT count(*) FROM effects") == 3
    assert await clean_demo.fetchval("SELECT count(DISTINCT event_id) FROM effects") == 3
