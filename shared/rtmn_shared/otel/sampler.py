"""Sampling as OTEL_TRACES_SAMPLER says, except a database or Redis call outside any request or
event: the relay's polls, probes' queries and housekeeping would each start a trace of one span.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

_STORES = ("db.system", "db.system.name")


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
        if kind is SpanKind.CLIENT and _is_root(parent_context) and _is_store(attributes):
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"QuietBackground{{{self.delegate.get_description()}}}"


def _is_root(parent_context: Context | None) -> bool:
    return not trace.get_current_span(parent_context).get_span_context().is_valid


def _is_store(attributes: Attributes) -> bool:
    return attributes is not None and any(key in attributes for key in _STORES)
