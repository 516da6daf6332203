"""What the geo service exposes beside the shared HTTP metrics."""

from __future__ import annotations

from prometheus_client import Gauge

from geo.breaker import CircuitBreaker, State

BREAKER_OPEN = Gauge(
    "rtmn_geo_breaker_open",
    "1 while the geocoding provider's circuit is open or half-open (not yet proven healthy)",
    ["provider"],
)


def watch(breaker: CircuitBreaker, provider: str) -> None:
    """Reads the breaker's state at each scrape, so an open circuit that half-opens shows."""
    BREAKER_OPEN.labels(provider).set_function(lambda: breaker.state is not State.CLOSED)
