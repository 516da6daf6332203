"""What the payments service counts beside the shared HTTP and outbox metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from rtmn_shared.resilience import CircuitBreaker, State

GATEWAY_ATTEMPTS = Counter(
    "rtmn_payments_gateway_attempts_total",
    "Orders asked of a gateway, by outcome (opened, unknown, refused, skipped: breaker open)",
    ["gateway", "outcome"],
)
GATEWAY_LATENCY = Histogram(
    "rtmn_payments_gateway_open_seconds",
    "How long a gateway took to open an order or fail to (skipped attempts are not timed)",
    ["gateway"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
STRAY_ORDERS = Counter(
    "rtmn_payments_stray_orders_total",
    "Possible orders a payment left behind at a gateway, as reconciliation settled them "
    "(none, lapsed, refunded: a capture on one, given back)",
    ["gateway", "settled"],
)
BREAKER_OPEN = Gauge(
    "rtmn_payments_gateway_breaker_open",
    "1 while a gateway's circuit is open or half-open: routed creates go to the next one",
    ["gateway"],
)


def watch(breaker: CircuitBreaker, gateway: str) -> None:
    BREAKER_OPEN.labels(gateway).set_function(lambda: breaker.state is not State.CLOSED)
