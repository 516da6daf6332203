"""The publisher check: first-hand publishes, re-publishes by the group and the operator, and
what a delivery's provenance looks like after retries and a DLQ replay."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

from demo_events import FAST, payment, record
from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import CATALOGUE, PRODUCED_BY, PaymentSuccess
from rtmn_shared.events.consumer import ConsumerRunner, Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outcomes import GiveUp, Retry
from rtmn_shared.events.publishers import PRODUCER_HEADER, Logins, Publishers
from rtmn_shared.suite import PRODUCERS
from rtmn_shared.testing.infra import HARNESS, Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.waiting import wait_for

LOGINS = Logins("rtmn_")
CHECK = Publishers(LOGINS, "rtmn_wallet", PRODUCED_BY)


def test_a_producer_of_the_type_is_accepted_and_anyone_else_refused() -> None:
    assert CHECK.refusal("payment.success", "rtmn_payments", {}) is None
    for stranger in ("rtmn_analytics", "rtmn_media", "guest", None):
        reason = CHECK.refusal("payment.success", stranger, {})
        assert reason is not None
        assert "not one of its producers" in reason


def test_a_named_producer_is_believed_from_the_group_itself_and_the_operator_only() -> None:
    named = {PRODUCER_HEADER: "rtmn_payments"}
    assert CHECK.refusal("payment.success", "rtmn_wallet", named) is None
    assert CHECK.refusal("payment.success", "rtmn_ops", named) is None
    assert CHECK.refusal("payment.success", "rtmn_ops", {PRODUCER_HEADER: b"rtmn_payments"}) is None
    assert CHECK.refusal("payment.success", "rtmn_analytics", named) is not None
    # A re-publish keeps the first-hand publisher: a refused event stays refused.
    assert CHECK.refusal("payment.success", "rtmn_ops", {PRODUCER_HEADER: "rtmn_media"})
    # The group's own publishes without a name are its own.
    assert CHECK.refusal("wallet.credited", "rtmn_wallet", {}) is None
    assert CHECK.refusal("payment.success", "rtmn_wallet", {}) is not None


def test_every_catalogued_type_names_its_producers_as_the_docs_do() -> None:
    assert set(CATALOGUE) <= set(PRODUCED_BY)
    assert all(PRODUCED_BY[t] for t in CATALOGUE)
    for type_, described in PRODUCERS.items():  # the AsyncAPI document's wording
        assert described.split()[0] in PRODUCED_BY[type_], type_


async def test_retries_and_an_operators_replay_keep_the_producer_and_the_event_is_applied(
    clean_demo: Pool, suite: Suite, background: Background, producers: Producers
) -> None:
    # The group runs as the harness login; it is a real check (not AnyPublisher).
    attempts: dict[uuid.UUID, int] = {}
    hopeless = {"on": True}

    async def flaky(delivery: Delivery) -> None:
        n = attempts[delivery.event.id] = attempts.get(delivery.event.id, 0) + 1
        if n < 3:
            raise Retry("provider answered 503")
        if hopeless["on"] and delivery.event.data["order_id"] == "hopeless":
            raise GiveUp("not today")
        await record(delivery, "flaky")

    runner = ConsumerRunner(
        service=HARNESS,
        pool=clean_demo,
        amqp_url=suite.amqp_url,
        handlers=[Handler("flaky", (PaymentSuccess,), flaky, retry_delays_ms=FAST)],
        logins=suite.logins,
    )
    background(runner.run())
    await wait_for(runner.ready.is_set, message="consumers ready")

    retried = CloudEvent.of(payment(1), source="rtmn/payments")
    hopeless_data = payment(2).model_copy(update={"order_id": "hopeless"})
    dead = CloudEvent.of(hopeless_data, source="rtmn/payments")
    await producers.publish(retried, dead, queue=f"{HARNESS}.flaky")

    def applied(event: CloudEvent) -> Awaitable[bool]:
        query = "SELECT count(*) = 1 FROM effects WHERE consumer = 'flaky' AND event_id = $1"
        return clean_demo.fetchval(query, event.id)  # type: ignore[no-any-return]

    await wait_for(lambda: applied(retried), message="applied after two retries")
    ops = suite.amqp_url_as("ops")
    parked = await wait_for(
        lambda: dead_letters(ops, f"{HARNESS}.flaky", 10, replay=False, logins=suite.logins),
        message="the hopeless one dead-lettered",
    )
    assert [m["producer"] for m in parked] == [suite.logins.of("payments")]
    assert "GiveUp: not today" in parked[0]["last_error"]

    hopeless["on"] = False
    await dead_letters(ops, f"{HARNESS}.flaky", 10, replay=True, logins=suite.logins)
    await wait_for(lambda: applied(dead), message="applied after the replay")
