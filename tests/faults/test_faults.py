"""Issue 10's faults: for each, 500 payments go in through the payments API and signed Razorpay
webhooks while the fault happens; afterwards every payment has exactly one wallet credit, one
order-confirmation mail and one payment push, every outbox is drained and no message is left
in a queue but the dead letters. The table of all of them prints at the end of the run."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from faults_kit import (
    PAYMENT_PATH,
    PAYMENT_QUEUES,
    RESULTS,
    Harness,
    Outcome,
    Stream,
    consumers_of,
    drive,
    effects,
    in_flight,
    publish_raw,
    queue_depths,
    retries,
    twice_out_of_order,
    undelivered_outbox_rows,
)
from logscan import scan

from rtmn_shared.testing.waiting import cancel_all, wait_for

N = 500
# Enough for a message to go through its 1, 5 and 30 s retries after the fault.
DRAIN_SECONDS = 150
Fault = Callable[[Stream], Awaitable[None]]


async def run(
    h: Harness,
    label: str,
    fault: Fault | None,
    *,
    stream_in: Callable[[Stream], Awaitable[None]] | None = None,
    note: str = "",
) -> tuple[Stream, Outcome]:
    """The stream and the fault together; then waits until everything drained, and counts."""
    stream = Stream.of(label, h.users, N)
    put_in = stream_in or (lambda s: drive(s, lambda p: h.client.pay(p, s)))
    tasks = [asyncio.ensure_future(put_in(stream))]
    if fault is not None:
        tasks.append(asyncio.ensure_future(fault(stream)))
    try:
        await asyncio.gather(*tasks)
    finally:
        await cancel_all(tasks)
    settled = time.monotonic()
    drain: float | None = None
    try:
        await wait_for(
            lambda: drained(h, stream),
            timeout=DRAIN_SECONDS,
            interval=0.25,
            message=f"{label}: every effect and no message in flight",
        )
        drain = time.monotonic() - settled
    finally:
        counted = await effects(h.database_url, h.providers, stream)
        outcome = Outcome(
            label,
            len(stream.payments),
            counted.per_effect(stream),
            counted.duplicates(stream),
            counted.lost(stream),
            drain,
            "; ".join(filter(None, [note, retries(stream)])),
            counted.most(stream),
        )
        RESULTS.append(outcome)
    return stream, outcome


async def drained(h: Harness, stream: Stream) -> bool:
    counted = await effects(h.database_url, h.providers, stream)
    if counted.lost(stream) or await undelivered_outbox_rows(h.database_url):
        return False
    try:
        depths = await asyncio.to_thread(queue_depths, h.vhost, h.broker_nodes)
    except subprocess.CalledProcessError:
        return False  # the broker not answering (another run may be restarting it): look again
    return in_flight(depths) == 0


def exactly_once(outcome: Outcome, h: Harness) -> None:
    """Nothing lost, nothing twice, every process alive."""
    assert outcome.lost == 0, outcome
    assert h.processes.dead() == [], f"processes died: {h.processes.dead()}"
    assert outcome.per_effect == {"wallet": N, "email": N, "push": N}, outcome
    assert outcome.duplicates == 0, outcome


async def captured_at_least(stream: Stream, count: int) -> None:
    await wait_for(
        lambda: stream.captured >= count,
        timeout=120,
        message=f"{stream.label}: {count} payments captured",
    )


def rabbitmq(command: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", command], check=True, capture_output=True, timeout=120)


async def test_rabbitmq_stopped_and_restarted_mid_stream(harness: Harness) -> None:
    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        await asyncio.to_thread(rabbitmq, "stop_app")
        try:  # payments keep being captured: their events wait in the outbox
            await captured_at_least(stream, N // 2)
        finally:
            await asyncio.to_thread(rabbitmq, "start_app")

    _, outcome = await run(harness, "RabbitMQ stop_app/start_app", fault)
    exactly_once(outcome, harness)


async def test_a_consumer_process_sigkilled_mid_handlers_then_restarted(harness: Harness) -> None:
    process = consumers_of("wallet")

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        harness.processes.kill(process, signal.SIGKILL)
        try:  # a backlog builds up in its queue meanwhile
            await captured_at_least(stream, N // 2)
        finally:
            harness.processes.start(process)
            await harness.processes.wait_ready([process])

    _, outcome = await run(harness, f"{process} (wallet's consumers) SIGKILL + restart", fault)
    exactly_once(outcome, harness)


async def test_postgresql_restarted_mid_stream(harness: Harness) -> None:
    assert harness.cluster is not None

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        await asyncio.to_thread(harness.cluster.restart)  # type: ignore[union-attr]

    _, outcome = await run(harness, "PostgreSQL restart (-m fast)", fault)
    exactly_once(outcome, harness)


async def test_the_email_provider_down_for_a_while_then_back(harness: Harness) -> None:
    sendgrid = harness.providers.sendgrid

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 5)
        refused = sendgrid.refused
        sendgrid.down = True
        try:  # 503s and hung requests, until the outage has refused 150 sends
            await wait_for(
                lambda: sendgrid.refused - refused >= 150,
                timeout=60,
                message="150 sends refused by the outage",
            )
        finally:
            sendgrid.down = False

    _, outcome = await run(harness, "SendGrid down (503s + timeouts)", fault)
    exactly_once(outcome, harness)


async def test_a_poison_message_reaches_the_dlq_and_the_queue_keeps_flowing(
    harness: Harness,
) -> None:
    before = await asyncio.to_thread(queue_depths, harness.vhost)

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        await publish_raw(
            harness.amqp_url,
            b'{"specversion": "1.0", "type": "paym\x00',
            "payment.success",
            f"poison-{uuid.uuid4()}",
        )

    _, outcome = await run(harness, "poison message", fault, note="1 poison → each DLQ")
    exactly_once(outcome, harness)
    after = await asyncio.to_thread(queue_depths, harness.vhost)
    for queue in PAYMENT_QUEUES:
        dlq = f"{queue}.dlq"
        assert after.get(dlq, 0) - before.get(dlq, 0) == 1, (dlq, before, after)


async def test_every_webhook_twice_out_of_order_from_concurrent_senders(
    harness: Harness,
) -> None:
    _, outcome = await run(
        harness,
        "webhooks ×2, shuffled, concurrent",
        None,
        stream_in=lambda s: twice_out_of_order(harness.client, s),
        note="authorized/captured/order.paid, each twice",
    )
    exactly_once(outcome, harness)


def test_no_secret_otp_token_or_phone_in_any_log_of_the_fault_run(harness: Harness) -> None:
    logs = sorted(Path(harness.processes.logs).glob("*.log"))
    assert {p.stem for p in logs} >= set(PAYMENT_PATH)
    findings = {
        path.name: [
            str(f) for f in scan(path.read_text(errors="replace"), harness.providers.secrets())
        ][:5]
        for path in logs
    }
    assert all(not found for found in findings.values()), findings
    assert sum(path.stat().st_size for path in logs) > 0
