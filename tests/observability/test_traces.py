"""One payment through the gateway is one trace across every service on its path: the suite's
processes export to an OTLP receiver in this test (issue 19)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtmn_shared.logs import mask_phone
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.otlp import ReceivedSpan, Receiver, receiving
from rtmn_shared.testing.processes import Gateway, Supervisor, free_port, procfile
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.testing.whole_suite import demo_command, environ, migrate_all, write_env_file

ROOT = Path(__file__).resolve().parents[2]
# Every consumer group a captured payment's `payment.success` reaches.
CONSUMERS = {
    "wallet.credit-cashback",
    "notify.email-order-confirmation",
    "notify.push-payment-success",
    "analytics.forward",
}


@dataclass(frozen=True)
class Paid:
    receiver: Receiver
    env: dict[str, str]  # what every process ran with


@pytest.fixture(scope="module")
async def paid(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Paid]:
    """Every Procfile process exporting spans to the receiver, behind nginx on a free port, once
    the demo's payment went through it. On a database and vhost of their own: the run's may have
    the whole suite of tests/conftest.py consuming from its queues, with no exporter."""
    work = tmp_path_factory.mktemp("traces")
    suite = Suite()
    await suite.create()
    try:
        async with receiving() as receiver:
            gateway = Gateway(ROOT, work / "gateway", {}, free_port())
            env = {
                **environ(suite, work, gateway.url),
                "LOG_LEVEL": "INFO",  # the supervisor sees a relay or consumer start in its log
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            }
            await asyncio.to_thread(migrate_all, ROOT, env)
            specs = {name: s for name, s in procfile(ROOT / "Procfile").items() if s.service}
            processes = Supervisor(ROOT, env, work / "logs", specs)
            try:
                await gateway.front(processes, list(specs))
                (work / "jwt-private.pem").write_text(suite.private_key)
                await pay_through_the_gateway(
                    gateway.url, write_env_file(work / "env", env), work / "jwt-private.pem"
                )
                yield Paid(receiver, env)
            finally:
                gateway.stop()
                processes.stop_all()
    finally:
        await suite.destroy()


async def test_one_payment_is_one_trace_from_its_create_to_every_consumer(paid: Paid) -> None:
    spans = await wait_for(
        lambda: payment_trace(paid.receiver),
        timeout=30,
        interval=0.1,
        message="a trace reaching every consumer of payment.success",
    )

    by_id = {span.span_id: span for span in spans}
    assert {"payments", "wallet", "notify", "analytics"} <= {span.service for span in spans}
    processing = [s for s in spans if s.attributes.get("messaging.operation.type") == "process"]
    for consumer in processing:
        assert consumer.kind == "consumer"
        assert consumer.attributes["messaging.system"] == "rabbitmq"
        assert consumer.attributes["messaging.destination.name"] == "rtmn.events"
        created = by_id[str(consumer.parent_id)]  # the span that wrote the event's outbox row
        assert created.kind == "producer"
        assert created.attributes["messaging.operation.type"] == "create"
        assert (
            created.attributes["messaging.message.id"]
            == consumer.attributes["messaging.message.id"]
        )
        assert created.service != consumer.service
        sent = [
            s
            for s in spans
            if s.attributes.get("messaging.operation.type") == "send"
            and s.attributes["messaging.message.id"] == created.attributes["messaging.message.id"]
        ]
        assert sent, f"no relay span sent {created.name}"
        assert all(s.parent_id == created.span_id and created.span_id in s.links for s in sent)
        assert {s.service for s in sent} == {created.service}

    about_payment = [s for s in spans if s.name.endswith(" payment.success")]
    subjects = {s.attributes.get("messaging.message.conversation_id") for s in about_payment}
    assert len(about_payment) == 2 + len(CONSUMERS)  # created, sent, processed by each
    assert len(subjects) == 1, "every span of the event names its payment"
    assert str(subjects.pop()).startswith("pmt_")

    success = next(s for s in processing if s.name == "process payment.success")
    root = ancestors(by_id, success)[-1]
    assert root.service == "payments"
    assert root.kind == "server"
    assert root.attributes.get("http.route") == "/api/payments/create"
    # The webhook that brought the capture is a request of its own, linked from the event.
    created = by_id[str(success.parent_id)]

    def linked() -> list[ReceivedSpan]:
        return [s for s in paid.receiver.spans if s.span_id in created.links]

    [webhook] = await wait_for(linked, message="the webhook's span")
    assert webhook.attributes.get("http.route") == "/api/webhooks/razorpay"
    assert webhook.trace_id != root.trace_id
    credit = next(s for s in processing if s.service == "wallet")
    assert any(s.kind == "client" and s.parent_id == credit.span_id for s in spans), (
        "the wallet's credit in PostgreSQL is in the trace"
    )


async def test_no_span_carries_a_secret_a_token_or_a_phone(paid: Paid) -> None:
    await wait_for(lambda: payment_trace(paid.receiver), timeout=30, message="the payment's trace")
    secrets = [paid.env[name] for name in ("RAZORPAY_WEBHOOK_SECRET", "OTP_HASH_KEY")]
    for span in paid.receiver.spans:
        for key, value in span.attributes.items():
            text = str(value)
            assert not any(secret in text for secret in secrets), (span.name, key)
            assert not any(token in text for token in ("Bearer", "eyJ")), (span.name, key)
            assert mask_phone(text) == text, (span.name, key)
    redis = [
        s
        for s in paid.receiver.spans
        if "redis" in (s.attributes.get("db.system"), s.attributes.get("db.system.name"))
    ]
    assert redis, "the suite's Redis calls are traced"
    for span in redis:
        statement = str(span.attributes.get("db.statement", span.attributes.get("db.query.text")))
        assert set(statement.split()[1:]) <= {"?"}, statement  # the command, never its values


async def pay_through_the_gateway(gateway: str, env_file: Path, private_key: Path) -> None:
    """The demo's story: a payment created, its signed webhook, a refund (the demo's env file,
    this suite's, wins over the run's environment)."""
    result = await asyncio.to_thread(
        subprocess.run,
        demo_command(env_file, private_key, gateway),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def payment_trace(receiver: Receiver) -> list[ReceivedSpan]:
    """The trace in which every consumer group of payment.success processed it, once each of
    its spans' parents and each processed event's send have arrived too."""
    for spans in receiver.traces().values():
        groups = {
            s.attributes.get("messaging.consumer.group.name")
            for s in spans
            if s.name == "process payment.success"
        }
        if groups >= CONSUMERS and complete(spans):
            return spans
    return []


def complete(spans: list[ReceivedSpan]) -> bool:
    ids = {s.span_id for s in spans}
    sent = {s.parent_id for s in spans if s.attributes.get("messaging.operation.type") == "send"}
    processed = {
        s.parent_id for s in spans if s.attributes.get("messaging.operation.type") == "process"
    }
    return all(s.parent_id is None or s.parent_id in ids for s in spans) and processed <= sent


def ancestors(by_id: dict[str, ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    """`span`, its parent, and so on up to the trace's root, each present in the trace."""
    chain = [span]
    while chain[-1].parent_id is not None:
        chain.append(by_id[chain[-1].parent_id])
    return chain
