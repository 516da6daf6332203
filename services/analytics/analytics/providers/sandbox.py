"""The sink for a provider without credentials: records what it would have sent, and says so."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

from analytics.domain import AnalyticsEvent
from analytics.providers.base import Mode, SendReport

log = logging.getLogger(__name__)


class SandboxSink:
    mode: Mode = "sandbox"

    def __init__(self, name: str, keep: int = 10_000) -> None:
        self.name = name
        # Bounded: a sandbox left running for days must not grow without end.
        self.sent: deque[AnalyticsEvent] = deque(maxlen=keep)

    async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
        self.sent.extend(events)
        log.info(
            "sandbox: %s would have received %d event(s); nothing left", self.name, len(events)
        )
        return SendReport()
