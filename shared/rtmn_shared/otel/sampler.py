"""Sampling as OTEL_TRACES_SAMPLER says, except a database or Redis call outside any request or
event: the relay's polls, probes' queries and housekeeping would each start a trace of one span.
An HTTP call of our own (a reconciliation asking a provider) still starts one.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

# What the aiohttp client instrumentation sets when it starts a span (old and new conventions);
# asyncpg's and redis's set theirs later or under other names.
_HTTP = ("http.request.method", "http.method")


class QuietBackground(Sampler):
    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and _is_root(parent_context) and not _is_http(attributes):
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"QuietBackground{{{self.delegate.get_description()}}}"


def _is_root(parent_context: Context | None) -> bool:
    return not trace.get_current_span(parent_context).get_span_context().is_valid


def _is_http(attributes: Attributes) -> bool:
    return attributes is not None and any(key in attributes for key in _HTTP)
