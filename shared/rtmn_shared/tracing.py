"""W3C trace context: one trace id follows a request into its events and their consumers.

`current_traceparent` is what log lines and CloudEvents carry, traces exported or not. With
OTEL_EXPORTER_OTLP_ENDPOINT set, `rtmn_shared.otel` installs `spans`, and the traceparents
become those of recorded spans; unset, `spans` stays None and each hook below is one check.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Protocol

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


class Traced(Protocol):
    """What a consumer span needs of an event (a CloudEvent, which builds on this module)."""

    @property
    def type(self) -> str: ...
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def traceparent(self) -> str | None: ...


class Spans(Protocol):
    """Records the spans no instrumentation sees: an event's creation, its publish, its
    handling (OpenTelemetry's messaging conventions)."""

    def current(self) -> str | None:
        """The traceparent of the span in progress, if one is."""

    def created(
        self, event_type: str, event_id: str, subject: str | None, parent: str | None
    ) -> str:
        """A span for an event written to the outbox, child of `parent` when given (linked to
        the span in progress), else of the span in progress; its traceparent, for the event."""

    def sending(
        self, routing_key: str, message_id: str, body: bytes, sent: asyncio.Future[Any]
    ) -> None:
        """A producer span per published event, ended when `sent` (its confirm) completes."""

    def processing(self, queue: str, event: Traced) -> AbstractContextManager[None]:
        """A consumer span, child of the event's traceparent, around the event's handling."""

    def failed(self, outcome: str, error: BaseException) -> None:
        """Marks the span in progress as failed (a retry or a dead-letter)."""


spans: Spans | None = None  # set by rtmn_shared.otel.setup when traces are exported


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id_of(traceparent: str | None) -> str | None:
    if traceparent is None:
        return None
    match = _TRACEPARENT.match(traceparent)
    return match.group(1) if match else None


def continue_trace(incoming: str | None) -> str:
    """A child span of the incoming context, or a fresh trace when there is none or it is bad;
    while a span is recorded, that span."""
    if spans is not None and (recorded := spans.current()) is not None:
        return recorded
    return new_traceparent(trace_id_of(incoming))


def event_traceparent(
    event_type: str, event_id: uuid.UUID, subject: str | None, parent: str | None = None
) -> str:
    """The traceparent a new event carries: a child of `parent` if given, else of the current
    trace, or a fresh one."""
    if spans is not None:
        return spans.created(event_type, str(event_id), subject, parent)
    incoming = parent or current_traceparent.get()
    return new_traceparent(incoming[3:35]) if incoming else new_traceparent()
