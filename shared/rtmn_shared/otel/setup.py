"""The SDK, the OTLP/HTTP exporter and the library instrumentations, installed once per process.

Everything else comes from the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS,
_TIMEOUT), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME.
"""

from __future__ import annotations

import os

import yarl
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from rtmn_shared import tracing
from rtmn_shared.otel.sampler import QuietBackground
from rtmn_shared.otel.spans import OtelSpans

# Probes and scrapes would be most of the spans and say nothing about a payment.
QUIET_URLS = "/healthz,/readyz,/metrics"


def install(service: str) -> None:
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    # What OTEL_TRACES_SAMPLER(_ARG) names, as TracerProvider itself would pick it.
    sampler = QuietBackground(sampling._get_from_env_or_default())
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", QUIET_URLS)
    # Before any web.Application or ClientSession exists: both are patched at construction.
    AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider, url_filter=_without_query)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    tracing.spans = OtelSpans(provider.get_tracer("rtmn_shared"))


def _without_query(url: yarl.URL) -> str:
    # A provider's API key may ride in the query (Google's geocoding takes `key=`).
    return str(url.with_query(None))
