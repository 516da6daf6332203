"""Google Analytics 4 Measurement Protocol: one user per request, ≤ 25 events, < 130 kB.

GA4 answers 2xx to almost anything and has no dedupe key, so events go out once per user and
request, and a check mode (GA4_VALIDATE=1) posts to /debug/mp/collect, which collects nothing
and returns validation messages, logged here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from analytics.domain import AnalyticsEvent, Scalar, to_json
from analytics.providers.base import Mode, RetryPolicy, SendReport, Unavailable, post

log = logging.getLogger(__name__)

MAX_EVENTS = 25
MAX_BYTES = 130_000
MAX_VALUE = 100  # GA4 keeps the first 100 characters of a parameter value
MAX_AGE = timedelta(hours=72)

Request = tuple[list[AnalyticsEvent], bytes]


class Ga4Sink:
    name = "ga4"
    mode: Mode = "live"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        measurement_id: str,
        api_secret: str,
        system_client_id: str,
        policy: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        validate: bool = False,
        concurrency: int = 4,
    ) -> None:
        self.session = session
        self.validate = validate
        path = "/debug/mp/collect" if validate else "/mp/collect"
        self.url = base_url.rstrip("/") + path
        self.params = {"measurement_id": measurement_id, "api_secret": api_secret}
        self.system_client_id = system_client_id
        self.policy = policy
        self.timeout = timeout
        self.concurrency = asyncio.Semaphore(concurrency)

    async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
        report = SendReport()
        # GA4 silently drops events backdated beyond 72 hours (a late DLQ replay): say so here.
        oldest = datetime.now(UTC) - MAX_AGE
        stale = [e for e in events if e.time < oldest]
        if stale:
            log.warning("ga4 keeps no events older than 72 hours; %d not sent", len(stale))
            report.reject(stale, "older than GA4's 72-hour window")
        fresh = [e for e in events if e.time >= oldest]
        outcomes = await asyncio.gather(*(self._collect(r) for r in self.requests(fresh)))
        for outcome in outcomes:
            report.merge(outcome)
        return report

    def requests(self, events: Sequence[AnalyticsEvent]) -> Iterator[Request]:
        by_user: dict[str | None, list[AnalyticsEvent]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        for user_id, own in by_user.items():
            envelope: dict[str, Any] = {"client_id": user_id or self.system_client_id}
            if user_id is not None:
                envelope["user_id"] = user_id
            if self.validate:
                envelope["validation_behavior"] = "ENFORCE_RECOMMENDATIONS"
            chunk: list[AnalyticsEvent] = []
            encoded: list[dict[str, Any]] = []
            size = len(to_json(envelope)) + 16
            for event in own:
                item = encode(event)
                item_size = len(to_json(item)) + 1
                if chunk and (len(chunk) == MAX_EVENTS or size + item_size > MAX_BYTES):
                    yield chunk, to_json(envelope | {"events": encoded})
                    chunk, encoded, size = [], [], len(to_json(envelope)) + 16
                chunk.append(event)
                encoded.append(item)
                size += item_size
            if chunk:
                yield chunk, to_json(envelope | {"events": encoded})

    async def _collect(self, request: Request) -> SendReport:
        events, body = request
        report = SendReport()
        async with self.concurrency:
            try:
                answer = await post(
                    self.session,
                    self.url,
                    sink=self.name,
                    body=body,
                    headers={"Content-Type": "application/json"},
                    params=self.params,
                    policy=self.policy,
                    client_timeout=self.timeout,
                )
            except Unavailable as error:
                log.warning(
                    "ga4 unavailable; %d event(s) go back to the queue: %s", len(events), error
                )
                report.fail(events)
                return report
        if 200 <= answer.status < 300:
            if self.validate:
                _log_validation(events, answer.json())
        elif answer.status in (401, 403):
            log.error("ga4 refused our credentials (HTTP %d)", answer.status)
            report.fail(events)
        else:
            log.error("ga4 refused %d event(s) (HTTP %d)", len(events), answer.status)
            report.reject(events, f"HTTP {answer.status}")
        return report


def encode(event: AnalyticsEvent) -> dict[str, Any]:
    params = {_param_name(k): _param_value(v) for k, v in event.properties.items()}
    return {
        "name": event.name,
        "params": params,
        "timestamp_micros": int(event.time.timestamp() * 1_000_000),
    }


def _param_name(name: str) -> str:
    # GA4 reads `value` with `currency` as the event's monetary value.
    return "value" if name == "revenue" else name


def _param_value(value: Scalar) -> str | int | float | Decimal:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value[:MAX_VALUE]
    return value


def _log_validation(events: list[AnalyticsEvent], body: Any) -> None:
    messages = body.get("validationMessages") if isinstance(body, dict) else None
    if not messages:
        log.info("ga4 validation: %d event(s) valid", len(events))
        return
    for message in messages:
        if isinstance(message, dict):
            log.warning(
                "ga4 validation: %s %s: %s",
                message.get("fieldPath", "?"),
                message.get("validationCode", "?"),
                message.get("description", ""),
            )
