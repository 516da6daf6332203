"""OpenTelemetry traces, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Unset, nothing here imports the SDK or installs an instrumentation: `rtmn_shared.tracing.spans`
stays None, and requests, events and log lines carry traceparents as they always did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """An OTLP endpoint is configured and the SDK is not switched off (OTEL_SDK_DISABLED)."""
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and any(environ.get(name, "").strip() for name in ENDPOINTS)


def configure_tracing(service: str) -> bool:
    """Exports this process's spans when wanted; True if it now does."""
    if not wanted():
        return False
    # Imported only here: a process that exports nothing never loads the SDK.
    from rtmn_shared.otel.setup import install  # noqa: PLC0415

    install(service)
    return True
