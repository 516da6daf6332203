"""Failing handlers: growing delays, then the dead-letter queue, which an operator can replay."""

from __future__ import annotations

import time
import uuid

import aio_pika
from prometheus_client import REGISTRY

from demo_events import FAST, emit, record, relay, start
from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentRefunded, PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outcomes import Retry
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


async def test_a_flaky_handler_is_retried_after_growing_delays(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    seen: list[float] = []

    async def flaky(delivery: Delivery) -> None:
        seen.append(time.monotonic())
        if len(seen) < 3:
            raise Retry("provider answered 503")
        await record(delivery, "flaky")

    await start(
        background,
        clean_demo,
        suite,
        Handler("flaky", (PaymentSuccess,), flaky, retry_delays_ms=FAST),
        group="retries",
    )
    [event_id] = await emit(clean_demo)
    background(relay(clean_demo, suite).run())
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) FROM effects"),
        timeout=15,
        message="the third attempt applied",
    )
    first, second = seen[1] - seen[0], seen[2] - seen[1]
    assert first >= FAST[0] / 1000
    assert second >= FAST[1] / 1000
    assert second > first
    assert await clean_demo.fetchval("SELECT event_id FROM effects") == event_id


async def test_a_hopeless_message_is_dead_lettered_and_later_ones_still_flow_then_replay_works(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    broken = {"on": True}
    poisoned: set[uuid.UUID] = set()

    async def picky(delivery: Delivery) -> None:
        if broken["on"] and delivery.event.id in poisoned:
            raise RuntimeError("this one always fails")
        await record(delivery, "picky")

    await start(
        background,
        clean_demo,
        suite,
        Handler("picky", (PaymentSuccess,), picky, retry_delays_ms=FAST),
        group="dlq",
    )
    [bad] = await emit(clean_demo)
    poisoned.add(bad)
    good = await emit(clean_demo, 5)
    background(relay(clean_demo, suite).run())
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 5 FROM effects"),
        message="the later messages applied",
    )

    async def dead() -> list[dict[str, object]]:
        return await dead_letters(suite.amqp_url, "dlq.picky", 10, replay=False)

    [letter] = await wait_for(dead, timeout=15, message="the message in the DLQ")
    assert letter["message_id"] == str(bad)
    assert letter["attempts"] == len(FAST) + 1
    assert "always fails" in str(letter["last_error"])
    assert set(await clean_demo.fetch("SELECT event_id FROM effects")) >= {(g,) for g in good}

    broken["on"] = False
    replayed = await dead_letters(suite.amqp_url, "dlq.picky", 10, replay=True)
    assert [m["message_id"] for m in replayed] == [str(bad)]
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", bad),
        message="the replay applied",
    )
    assert await dead() == []


async def test_a_handler_receives_the_model_it_declared_and_never_another(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    received: list[type[object]] = []

    async def credit(delivery: Delivery[PaymentSuccess]) -> None:
        received.append(type(delivery.data))
        await record(delivery, "typed")

    await start(
        background,
        clean_demo,
        suite,
        Handler("typed", (PaymentSuccess,), credit, retry_delays_ms=FAST),
        group="typed",
    )
    refund = PaymentRefunded(
        refund_id="rfnd_1",
        payment_id="pay_1",
        order_id="ord_1",
        user_id="u1",
        amount=100,
        refunded_total=100,
        currency="INR",
        full=False,
    )
    stray = CloudEvent.of(refund, source="rtmn/test")
    connection = await aio_pika.connect(suite.amqp_url)
    channel = await connection.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(stray.to_json(), message_id=str(stray.id)), routing_key="typed.typed"
    )
    await connection.close()
    [paid] = await emit(clean_demo)
    background(relay(clean_demo, suite).run())
    [letter] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "typed.typed", 10, replay=False),
        message="the refund dead-lettered",
    )
    assert letter["message_id"] == str(stray.id)
    assert letter["attempts"] == 1
    assert "payment.refunded is not an event typed.typed takes" in str(letter["last_error"])
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", paid),
        message="the payment applied",
    )
    assert received == [PaymentSuccess]


async def test_an_unparseable_message_goes_straight_to_the_dlq(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    async def never(delivery: Delivery) -> None:
        raise AssertionError("a poison message must not reach the handler")

    await start(
        background,
        clean_demo,
        suite,
        Handler("strict", (PaymentSuccess,), never, retry_delays_ms=FAST),
        group="poison",
    )
    connection = await aio_pika.connect(suite.amqp_url)
    channel = await connection.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(b"\x00not json", message_id="poison-1"), routing_key="poison.strict"
    )
    await connection.close()
    [letter] = await wait_for(
        lambda: dead_letters(suite.amqp_url, "poison.strict", 10, replay=False),
        message="the poison message dead-lettered",
    )
    assert letter["attempts"] == 1
    assert "not a CloudEvent" in str(letter["last_error"])


def test_every_outcome_of_every_queue_is_exported_at_zero_before_any_delivery() -> None:
    """So that increase() sees the first dead letter (a series born at 1 never grows) and the
    dashboard's dead-letter panel shows 0 rather than no data."""

    async def never(delivery: Delivery) -> None:
        raise AssertionError("nothing is delivered")

    ConsumerRunner(
        service="zeros",
        pool=None,
        amqp_url="amqp://unused/",
        handlers=[Handler("counted", (PaymentSuccess,), never, retry_delays_ms=FAST)],
    )
    for outcome in ("applied", "duplicate", "retried", "dead_lettered"):
        labels = {"queue": "zeros.counted", "outcome": outcome}
        assert REGISTRY.get_sample_value("rtmn_events_consumed_total", labels) == 0.0
