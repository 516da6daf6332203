"""`.env.example` documents every variable every service reads (under our names and the other
names a service reads, such as the seed guide's), and nothing they do not."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from rtmn_shared.access import principals
from rtmn_shared.env_names import unread
from rtmn_shared.service import Service
from rtmn_shared.settings import secret_settings
from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[1]
# Read by `rtmn-db init`, or turned into the URLs' logins (settings.service_logins), not by a
# service's settings fields.
PROVISIONING = {
    "DATABASE_ADMIN_URL",
    "RABBITMQ_MANAGEMENT_URL",
    "REDIS_ADMIN_URL",
    "AMQP_PASSWORD",
    "REDIS_PASSWORD",
    *(f"{name.upper()}_DB_{kind}PASSWORD" for name in SERVICES for kind in ("", "MIGRATION_")),
    *(f"{name.upper()}_REDIS_PASSWORD" for name in SERVICES),
    *(f"{name.upper()}_AMQP_PASSWORD" for name in principals()),
}
# Read by the OpenTelemetry SDK when traces are exported (rtmn_shared/otel), not by settings.
OPENTELEMETRY = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
}


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)) | set(
        re.findall(r"\b([A-Z][A-Z0-9_]+_(?:DB|DB_MIGRATION|AMQP|REDIS)_PASSWORD)=", text)
    )


def read_by(name: str) -> set[str]:
    service: Service[object] = importlib.import_module(f"{name}.app").SERVICE  # type: ignore[type-var]
    settings = service.settings
    return {field.upper() for field in settings.model_fields} | set(settings.other_names)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_variable_a_service_reads_is_documented(name: str) -> None:
    assert read_by(name) - documented() == set()


def test_nothing_documented_is_read_by_no_one() -> None:
    read = set().union(*(read_by(name) for name in SERVICES))
    assert documented() - read - PROVISIONING - OPENTELEMETRY == set()


def test_the_start_up_guard_accepts_every_name_documented() -> None:
    assert unread(dict.fromkeys(documented(), "set")) == []


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_service_declares_its_own_credentials_and_never_how_the_store_is_reached(
    name: str,
) -> None:
    declared = secret_settings(importlib.import_module(f"{name}.app").SERVICE.settings)
    assert not {"DB_PASSWORD", "SECRETS_KEYS"} & declared.keys()
    assert all(key == field.upper() for key, field in declared.items())
