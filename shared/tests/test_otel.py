"""Traces are exported only when an OTLP endpoint is configured; otherwise nothing is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from rtmn_shared.otel import wanted
from rtmn_shared.otel.sampler import QuietBackground


@pytest.mark.parametrize(
    ("environ", "exported"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
    ],
)
def test_an_endpoint_turns_traces_on(environ: dict[str, str], exported: bool) -> None:
    assert wanted(environ) is exported


PROBE = """
import sys
import aiohttp.web
import payments.app  # everything a service imports
from rtmn_shared import tracing
from rtmn_shared.otel import configure_tracing
original = aiohttp.web.Application
# redis-py imports the metrics SDK when it is installed (and uses it only if told to).
loaded = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter")
print(configure_tracing("demo"), tracing.spans is None, aiohttp.web.Application is original,
      any(m.startswith(loaded) for m in sys.modules))
"""


def _probe(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_without_an_endpoint_no_sdk_is_loaded_and_nothing_is_instrumented() -> None:
    assert _probe({}) == "False True True False"


def test_with_an_endpoint_the_sdk_records_and_aiohttp_is_instrumented() -> None:
    # Nothing listens there: spans are only batched, and dropped when the process exits.
    assert _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) == "True False False True"


def test_a_store_call_outside_any_request_or_event_starts_no_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=QuietBackground(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    tracer.start_span("SELECT", kind=SpanKind.CLIENT).end()  # a relay's poll
    tracer.start_span("GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}).end()
    with tracer.start_as_current_span("process payment.success", kind=SpanKind.CONSUMER):
        tracer.start_span("INSERT", kind=SpanKind.CLIENT).end()
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "GET",
        "INSERT",
        "process payment.success",
    ]
