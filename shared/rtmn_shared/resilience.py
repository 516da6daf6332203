"""Waiting out outages: capped exponential backoff with jitter."""

from __future__ import annotations

import random


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
