"""The breaker's state as a metric: 1 from the moment it opens until a probe succeeds."""

from __future__ import annotations

from prometheus_client import REGISTRY

from geo.breaker import CircuitBreaker
from geo.metrics import watch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_open(provider: str) -> float | None:
    return REGISTRY.get_sample_value("rtmn_geo_breaker_open", {"provider": provider})


def test_the_breaker_metric_follows_open_half_open_and_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=30, clock=clock)
    watch(breaker, "test_provider")
    assert breaker_open("test_provider") == 0
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker_open("test_provider") == 1
    clock.now += 31  # half-open: still not proven healthy
    assert breaker_open("test_provider") == 1
    breaker.before_call()
    breaker.record_success()
    assert breaker_open("test_provider") == 0
