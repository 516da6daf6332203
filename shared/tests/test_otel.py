"""Traces are exported only when an OTLP endpoint is configured; otherwise nothing is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rtmn_shared.otel import wanted


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
from rtmn_shared import tracing
from rtmn_shared.otel import configure_tracing
original = aiohttp.web.Application
print(configure_tracing("demo"), tracing.spans is None, aiohttp.web.Application is original,
      any(m.startswith("opentelemetry") for m in sys.modules))
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
