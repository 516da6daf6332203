"""Our messaging spans: an event's creation under the request, the relay's send and each
consumer's processing its children, a retried attempt marked failed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from demo_events import FAST, outbox, payment, record, relay, start
from rtmn_shared import tracing
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.outcomes import Retry
from rtmn_shared.otel.spans import OtelSpans, traceparent_of
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Spans recorded in memory while the test runs, as `rtmn_shared.otel.setup` installs them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.spans = OtelSpans(provider.get_tracer("test"))
    yield provider, exporter
    tracing.spans = None
    provider.shutdown()


async def test_the_relay_and_each_attempt_of_a_consumer_are_children_of_the_events_creation(
    clean_demo: Pool,
    suite: Suite,
    background: Background,
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    traces, exporter = provider
    with traces.get_tracer("test").start_as_current_span("POST /pay", kind=SpanKind.SERVER):
        async with clean_demo.acquire() as conn, conn.transaction():
            event = await outbox.add(conn, payment())

    async def fails_once(delivery: Delivery) -> None:
        if delivery.attempt == 1:
            raise Retry("the provider timed out")
        await record(delivery, "traced")

    handler = Handler("traced", (PaymentSuccess,), fails_once, retry_delays_ms=FAST)
    await start(background, clean_demo, suite, handler, group="otel")
    background(relay(clean_demo, suite).run())

    def finished(name: str) -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.name == name]

    await wait_for(lambda: len(finished("process payment.success")) == 2, timeout=20)
    [request] = finished("POST /pay")
    [created] = finished("create payment.success")
    [sent] = finished("send payment.success")
    retried, applied = sorted(finished("process payment.success"), key=lambda s: s.start_time or 0)

    assert parent_of(created) == ids_of(request)[1]
    assert created.context is not None
    assert event.traceparent == traceparent_of(created.context)
    for span in (sent, retried, applied):
        assert ids_of(span)[0] == ids_of(request)[0]  # one trace
        assert parent_of(span) == ids_of(created)[1]
        assert attributes_of(span)["messaging.message.id"] == str(event.id)
        assert attributes_of(span)["messaging.message.conversation_id"] == event.subject
    assert sent.kind is SpanKind.PRODUCER
    assert [link.context.span_id for link in sent.links] == [ids_of(created)[1]]
    assert retried.kind is applied.kind is SpanKind.CONSUMER
    assert attributes_of(retried)["rtmn.outcome"] == "retried"
    assert retried.status.status_code is StatusCode.ERROR
    assert applied.status.status_code is StatusCode.UNSET


def ids_of(span: ReadableSpan) -> tuple[int, int]:
    """Its trace id and span id."""
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def attributes_of(span: ReadableSpan) -> Mapping[str, object]:
    return span.attributes or {}
