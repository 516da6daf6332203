"""Mixpanel's server-side /import: batches of ≤ 2,000 events and ≤ 2 MB, validated (strict=1).

`$insert_id` is our event id and `time` the event's time, so Mixpanel itself drops a resend.
With strict=1 a 400 names the invalid records and the rest are imported: those are logged and
never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp

from analytics.domain import AnalyticsEvent, to_json
from analytics.providers.base import Mode, RetryPolicy, SendReport, Unavailable, post

log = logging.getLogger(__name__)

MAX_EVENTS = 2000
MAX_BYTES = 2 * 1024 * 1024  # uncompressed, as Mixpanel's 413 counts it

Encoded = tuple[AnalyticsEvent, bytes]


class MixpanelSink:
    name = "mixpanel"
    mode: Mode = "live"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        authorization: str,
        project_id: str | None = None,
        project_token: str | None = None,
        policy: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.session = session
        self.url = api_url.rstrip("/") + "/import"
        self.headers = {"Content-Type": "application/json", "Authorization": authorization}
        self.params = {"strict": "1"} | ({"project_id": project_id} if project_id else {})
        self.project_token = project_token
        self.policy = policy
        self.timeout = timeout
        self.max_events = min(max_events, MAX_EVENTS)
        self.max_bytes = max_bytes

    def encode(self, event: AnalyticsEvent) -> bytes:
        properties: dict[str, Any] = dict(event.properties)
        # Set last, so no property can stand in for the identity, time or dedupe key.
        properties.update(
            {
                "time": int(event.time.timestamp() * 1000),
                # Mixpanel's documented value for an event that belongs to no user.
                "distinct_id": event.user_id or "",
                "$insert_id": event.insert_id,
            }
        )
        if self.project_token:
            properties["token"] = self.project_token
        return to_json({"event": event.name, "properties": properties})

    async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
        report = SendReport()
        for chunk in self._chunks(report, events):
            report.merge(await self._import(chunk))
        return report

    def _chunks(
        self, report: SendReport, events: Sequence[AnalyticsEvent]
    ) -> Iterator[list[Encoded]]:
        chunk: list[Encoded] = []
        size = 2  # the brackets
        for event in events:
            encoded = self.encode(event)
            if len(encoded) + 2 > self.max_bytes:
                report.reject([event], "larger than Mixpanel's request limit on its own")
                continue
            if chunk and (
                len(chunk) == self.max_events or size + len(encoded) + 1 > self.max_bytes
            ):
                yield chunk
                chunk, size = [], 2
            chunk.append((event, encoded))
            size += len(encoded) + 1
        if chunk:
            yield chunk

    async def _import(self, chunk: list[Encoded]) -> SendReport:
        report = SendReport()
        events = [event for event, _ in chunk]
        body = b"[" + b",".join(encoded for _, encoded in chunk) + b"]"
        try:
            answer = await post(
                self.session,
                self.url,
                sink=self.name,
                body=body,
                headers=self.headers,
                params=self.params,
                policy=self.policy,
                client_timeout=self.timeout,
            )
        except Unavailable as error:
            log.warning(
                "mixpanel unavailable; %d event(s) go back to the queue: %s", len(events), error
            )
            report.fail(events)
            return report
        if answer.status == 200:
            return report
        if answer.status == 400:
            self._read_failed_records(report, events, answer.json())
        elif answer.status == 413 and len(chunk) > 1:
            half = len(chunk) // 2
            report.merge(await self._import(chunk[:half]))
            report.merge(await self._import(chunk[half:]))
        elif answer.status in (401, 403):
            # Wrong credentials are fixed by an operator: keep the events for the retry queue.
            log.error("mixpanel refused our credentials (HTTP %d)", answer.status)
            report.fail(events)
        else:
            log.error("mixpanel refused a batch of %d (HTTP %d)", len(events), answer.status)
            report.reject(events, f"HTTP {answer.status}")
        return report

    def _read_failed_records(
        self, report: SendReport, events: list[AnalyticsEvent], body: Any
    ) -> None:
        records = body.get("failed_records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            log.error("mixpanel rejected a batch of %d without naming records", len(events))
            report.reject(events, "HTTP 400")
            return
        by_id = {event.insert_id: event for event in events}
        for record in records:
            if not isinstance(record, dict):
                continue
            # The reference page names the key "$insert_id", the OpenAPI example "insert_id".
            insert_id = record.get("$insert_id") or record.get("insert_id")
            index = record.get("index")
            if insert_id not in by_id and isinstance(index, int) and 0 <= index < len(events):
                insert_id = events[index].insert_id
            if insert_id not in by_id:
                continue
            why = f"{record.get('field', '?')}: {record.get('message', 'invalid')}"
            log.warning(
                "mixpanel rejected event %s (%s): %s", insert_id, by_id[insert_id].name, why
            )
            report.rejected[str(insert_id)] = why
        log.info(
            "mixpanel imported %s of %d; %d rejected",
            body.get("num_records_imported", "?"),
            len(events),
            len(records),
        )
