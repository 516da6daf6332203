"""Our own spans, named as OpenTelemetry's messaging conventions name them (RabbitMQ): an
event's creation where its outbox row is written, the relay's send of it, and each consumer's
processing of it. The event's `traceparent` is the creation span, so the relay's send and every
consumer's processing are its children: one request, one trace, across every service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rtmn_shared.suite import EXCHANGE
from rtmn_shared.tracing import Traced, current_traceparent

_PROPAGATOR = TraceContextTextMapPropagator()


class OtelSpans:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def current(self) -> str | None:
        context = trace.get_current_span().get_span_context()
        return traceparent_of(context) if context.is_valid else None

    def created(
        self, event_type: str, event_id: str, subject: str | None, parent: str | None
    ) -> str:
        recording = trace.get_current_span().get_span_context()
        links: list[Link] = []
        if parent is not None:  # another request's trace, which this one leads on to
            context = context_of(parent)
            links = [Link(recording)] if recording.is_valid else []
        else:  # under a recorded span (a request's, a consumer's) it is the parent; else the log's
            context = None if recording.is_valid else context_of(current_traceparent.get())
        span = self.tracer.start_span(
            f"create {event_type}",
            context=context,
            kind=SpanKind.PRODUCER,
            links=links,
            attributes=messaging("create", "create", event_type, event_id, subject),
        )
        span.end()
        return traceparent_of(span.get_span_context())

    def sending(
        self, routing_key: str, message_id: str, body: bytes, sent: asyncio.Future[Any]
    ) -> None:
        envelope = _envelope(body)
        row = context_of(_text(envelope, "traceparent"))
        written = trace.get_current_span(row).get_span_context()
        span = self.tracer.start_span(
            f"send {routing_key}",
            context=row,
            kind=SpanKind.PRODUCER,
            links=[Link(written)] if written.is_valid else (),
            attributes=messaging(
                "send", "publish", routing_key, message_id, _text(envelope, "subject")
            ),
        )
        sent.add_done_callback(lambda done: _end_send(span, done))

    @contextlib.contextmanager
    def processing(self, queue: str, event: Traced) -> Iterator[None]:
        attributes = {
            **messaging("process", "process", event.type, str(event.id), event.subject),
            "messaging.consumer.group.name": queue,
            "messaging.destination.subscription.name": queue,
        }
        with self.tracer.start_as_current_span(
            f"process {event.type}",
            context=context_of(event.traceparent),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:
            token = current_traceparent.set(traceparent_of(span.get_span_context()))
            try:
                yield
            finally:
                current_traceparent.reset(token)

    def failed(self, outcome: str, error: BaseException) -> None:
        span = trace.get_current_span()
        span.set_attribute("rtmn.outcome", outcome)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def messaging(
    operation: str, name: str, routing_key: str, message_id: str, subject: str | None
) -> dict[str, str]:
    """The conventions' attributes; the event's subject (a payment's id, a user's) is the
    conversation, so a trace backend finds every event of payment X by it."""
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": EXCHANGE,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.operation.type": operation,
        "messaging.operation.name": name,
        "messaging.message.id": message_id,
    }
    if subject:
        attributes["messaging.message.conversation_id"] = subject
    return attributes


def traceparent_of(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def context_of(traceparent: str | None) -> Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def _envelope(body: bytes) -> dict[str, object]:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return envelope if isinstance(envelope, dict) else {}


def _text(envelope: dict[str, object], key: str) -> str | None:
    value = envelope.get(key)
    return value if isinstance(value, str) else None


def _end_send(span: Span, done: asyncio.Future[Any]) -> None:
    if done.cancelled():
        span.set_status(Status(StatusCode.ERROR, "not confirmed in time"))
    elif (error := done.exception()) is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
