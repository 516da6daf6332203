"""What the analytics service counts, beside the shared consumer and HTTP metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SINK_EVENTS = Counter(
    "rtmn_analytics_events_total",
    "Events handed to a sink by outcome (accepted, rejected, failed)",
    ["sink", "outcome"],
)
SINK_OUTCOMES = ("accepted", "rejected", "failed")
SINK_REQUESTS = Counter(
    "rtmn_analytics_sink_requests_total", "HTTP requests to a sink by status", ["sink", "status"]
)
BATCH_SIZE = Histogram(
    "rtmn_analytics_batch_events",
    "Events per flushed batch",
    ["sink"],
    buckets=(1, 10, 25, 50, 100, 250, 500, 1000, 2000, 4000),
)
