"""The interface every analytics sink implements, and the HTTP posting they share."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
import orjson

from analytics.domain import AnalyticsEvent
from analytics.metrics import SINK_REQUESTS

log = logging.getLogger(__name__)

Mode = Literal["live", "sandbox"]


@dataclass
class SendReport:
    """How a batch fared. Events in neither set were accepted."""

    # Refused as invalid by the provider: logged, never retried (a resend cannot fix them).
    rejected: dict[str, str] = field(default_factory=dict)
    # Not delivered because the provider stayed unavailable: the broker delivers them again.
    failed: set[str] = field(default_factory=set)

    def reject(self, events: Iterable[AnalyticsEvent], why: str) -> None:
        self.rejected.update((e.insert_id, why) for e in events)

    def fail(self, events: Iterable[AnalyticsEvent]) -> None:
        self.failed.update(e.insert_id for e in events)

    def merge(self, other: SendReport) -> None:
        self.rejected.update(other.rejected)
        self.failed |= other.failed


class AnalyticsSink(Protocol):
    name: str
    mode: Mode

    async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
        """Delivers what it can; never raises for a provider's failure, reports it instead."""
        ...


class Unavailable(Exception):
    """The provider kept answering 429/5xx or not at all, through every attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_seconds: float = 0.5
    cap_seconds: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.cap_seconds, self.first_seconds * 2.0 ** (attempt - 1))
        # Jitter on the upper half keeps replicas from hammering a recovering provider in step.
        jittered = backoff / 2 + random.uniform(0, backoff / 2)
        if retry_after is not None:
            return min(self.cap_seconds, max(jittered, retry_after))
        return jittered


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    sink: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    client_timeout: aiohttp.ClientTimeout,
    params: Mapping[str, str] | None = None,
) -> Answer:
    """Posts `body`, retrying 429, 5xx, timeouts and broken connections with bounded backoff.

    Any other answer is returned for the sink to read; Unavailable once the attempts run out.
    """
    reason = "no attempt"
    for attempt in range(1, policy.attempts + 1):
        retry_after = None
        try:
            async with session.post(
                url, data=body, headers=headers, params=params, timeout=client_timeout
            ) as response:
                raw = await response.read()
                SINK_REQUESTS.labels(sink, str(response.status)).inc()
                if response.status != 429 and response.status < 500:
                    return Answer(response.status, raw)
                reason = f"HTTP {response.status}"
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            SINK_REQUESTS.labels(sink, "error").inc()
            reason = type(error).__name__
        if attempt < policy.attempts:
            delay = policy.delay(attempt, retry_after)
            log.warning("%s answered %s; retrying in %.2fs", sink, reason, delay)
            await asyncio.sleep(delay)
    raise Unavailable(f"{sink}: {reason} after {policy.attempts} attempt(s)")


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff stands in for it
