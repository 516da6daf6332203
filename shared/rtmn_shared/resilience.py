"""Waiting out outages: capped exponential backoff with jitter, and circuit breakers.

A circuit breaker: after repeated provider failures, stop calling it for a while.

closed -> (failure_threshold consecutive failures) -> open -> (reset_after seconds) ->
half-open: one probe call is let through; success closes the circuit, failure re-opens it.
In-process on purpose: each replica learns about the provider on its own, which costs at most
`failure_threshold` failed calls per replica and needs no coordination.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import Enum


class Backoff:
    def __init__(self, first: float = 0.2, cap: float = 10.0, factor: float = 2.0) -> None:
        self.first, self.cap, self.factor = first, cap, factor
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        # Full jitter on the upper half keeps many replicas from reconnecting in step.
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self._next = self.first


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = State.CLOSED
        self._probe_in_flight = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_after:
            return State.HALF_OPEN
        return self._state

    def before_call(self) -> None:
        """Raises CircuitOpen unless a call may go to the provider now."""
        state = self.state
        if state is State.CLOSED:
            return
        if state is State.HALF_OPEN and not self._probe_in_flight:
            self._state = State.HALF_OPEN
            self._probe_in_flight = True
            return
        waited = self._clock() - self._opened_at
        raise CircuitOpen(max(1.0, self.reset_after - waited))

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._state = State.CLOSED

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._failures += 1
        if self._state is State.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = State.OPEN
            self._opened_at = self._clock()
