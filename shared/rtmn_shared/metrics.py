"""The Prometheus metrics every service exposes on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "rtmn_http_requests_total",
    "HTTP requests by route and status",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "rtmn_http_request_duration_seconds",
    "HTTP request latency by route",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter(
    "rtmn_events_published_total", "Outbox rows confirmed by the broker", ["service", "type"]
)
EVENTS_CONSUMED = Counter(
    "rtmn_events_consumed_total",
    "Deliveries by queue and outcome (applied, duplicate, retried, dead_lettered)",
    ["queue", "outcome"],
)
CONSUMED_OUTCOMES = ("applied", "duplicate", "retried", "dead_lettered")
EVENTS_REFUSED = Counter(
    "rtmn_events_refused_total",
    "Deliveries dead-lettered because their publisher is not a producer of their type",
    ["queue", "type"],
)
OUTBOX_LAG = Gauge(
    "rtmn_outbox_lag_seconds", "Age of the oldest unsent outbox row (0 when drained)", ["service"]
)
OUTBOX_PENDING = Gauge("rtmn_outbox_pending", "Unsent outbox rows seen by the relay", ["service"])
PROVIDER_SANDBOX = Gauge(
    "rtmn_provider_sandbox",
    "1 when a provider runs as its sandbox (no credentials), 0 when live; as /readyz reports it",
    ["service", "provider"],
)
# Timestamps rather than ages, so the value stays true between start-ups: alert on time() - x.
SECRET_UPDATED = Gauge(
    "rtmn_secret_updated_timestamp_seconds",
    "When each stored credential was last put or re-sealed (Unix time)",
    ["service", "name"],
)
SECRET_KEY_IN_USE_SINCE = Gauge(
    "rtmn_secret_key_in_use_since_timestamp_seconds",
    "When the oldest stored credential still sealed by the current key version was sealed",
    ["service", "version"],
)
