"""One JSON object per log line, with request, trace and event ids, and no phone numbers."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from rtmn_shared.tracing import current_traceparent, trace_id_of

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)

# An E.164 or bare 10-15 digit number standing on its own: a phone until proven otherwise.
_PHONE = re.compile(r"(?<![\w.-])\+?\d{10,15}(?![\w.-])")
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact_url(url: object) -> str:
    """A connection URL (or a broker's comma-separated list) fit for a log line: each password
    replaced by ***."""
    return ",".join(_redact(address) for address in str(url).split(","))


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def mask_phone(text: str) -> str:
    return _PHONE.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], text)


def mask_e164(e164: str) -> str:
    """A phone number as logs and errors may show it: country code and last two digits."""
    return f"{e164[:3]}******{e164[-2:]}"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask_phone(record.getMessage()),
        }
        for key in ("request_id", "event_id"):
            value = request_id_var.get() if key == "request_id" else event_id_var.get()
            if value:
                entry[key] = value
        trace_id = trace_id_of(current_traceparent.get())
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_phone(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = mask_phone(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The AMQP and HTTP libraries narrate every frame and request at INFO.
    for noisy in ("aiormq", "aio_pika", "aiohttp.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
