"""W3C trace context: one trace id follows a request into its events and their consumers."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id_of(traceparent: str | None) -> str | None:
    if traceparent is None:
        return None
    match = _TRACEPARENT.match(traceparent)
    return match.group(1) if match else None


def continue_trace(incoming: str | None) -> str:
    """A child span of the incoming context, or a fresh trace when there is none or it is bad."""
    return new_traceparent(trace_id_of(incoming))
