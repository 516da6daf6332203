"""Batches for one sink: flushed when full or when the oldest event has waited long enough.

Whoever submits an event waits for its batch's outcome: a consumer handler returns (and the
runner acknowledges the message) only once the sink accepted or refused the event as invalid,
and gets Retry when the sink stayed unavailable, so the broker delivers it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from analytics.domain import AnalyticsEvent
from analytics.metrics import BATCH_SIZE, SINK_EVENTS, SINK_OUTCOMES
from analytics.providers.base import AnalyticsSink, SendReport
from rtmn_shared.events.outcomes import Retry

log = logging.getLogger(__name__)


class Full(Exception):
    """More events wait for this sink than it may buffer."""


@dataclass
class _Entry:
    event: AnalyticsEvent
    at: float
    # Several waiters when the same event is submitted again before its batch left.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Batcher:
    def __init__(
        self,
        sink: AnalyticsSink,
        *,
        max_events: int,
        max_delay_seconds: float,
        max_pending: int | None = None,
        concurrency: int = 2,
        probe_seconds: float = 3.0,
    ) -> None:
        self.sink = sink
        self.max_events = max_events
        self.max_delay = max_delay_seconds
        self.max_pending = max_pending
        self._pending: dict[str, _Entry] = {}
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._sending: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        # While the last batch failed whole, down() says so for this long; then a batch probes.
        self.probe_seconds = probe_seconds
        self._failed_at: float | None = None
        for outcome in SINK_OUTCOMES:  # exported at 0 from the start, as the consumers' outcomes
            SINK_EVENTS.labels(sink.name, outcome)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def down(self) -> bool:
        """Whether the sink's last batch failed whole (it stayed unavailable) so recently that
        waiting on another would only hold the caller up."""
        failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < self.probe_seconds

    def has_room(self) -> bool:
        return self.max_pending is None or len(self._pending) < self.max_pending

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=f"batcher-{self.sink.name}")

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Stops flushing; batches in flight get a grace period, waiters still queued are
        cancelled (their messages stay unacknowledged and come back)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._sending:
            _, late = await asyncio.wait(self._sending, timeout=grace_seconds)
            for task in late:
                task.cancel()
        for entry in self._pending.values():
            for waiter in entry.waiters:
                waiter.cancel()
        self._pending.clear()

    def offer(self, event: AnalyticsEvent) -> asyncio.Future[None]:
        entry = self._pending.get(event.insert_id)
        if entry is None:
            if not self.has_room():
                raise Full(f"{self.sink.name} has {len(self._pending)} events waiting")
            entry = self._pending[event.insert_id] = _Entry(event, time.monotonic())
        waiter = asyncio.get_running_loop().create_future()
        entry.waiters.append(waiter)
        self._nonempty.set()
        if len(self._pending) >= self.max_events:
            self._full.set()
        return waiter

    async def submit(self, event: AnalyticsEvent) -> None:
        """Returns once the sink took the event (or refused it as invalid); Retry otherwise."""
        await self.offer(event)

    def enqueue(self, event: AnalyticsEvent) -> None:
        """Fire and forget: the outcome is counted and logged, nobody waits for it."""
        self.offer(event).add_done_callback(_forget)

    async def _run(self) -> None:
        while True:
            await self._nonempty.wait()
            oldest = next(iter(self._pending.values())).at
            remaining = oldest + self.max_delay - time.monotonic()
            if len(self._pending) < self.max_events and remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._full.wait()
            await self._slots.acquire()
            batch = self._take()
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _take(self) -> list[_Entry]:
        ids = list(self._pending)[: self.max_events]
        batch = [self._pending.pop(i) for i in ids]
        if not self._pending:
            self._nonempty.clear()
        if len(self._pending) < self.max_events:
            self._full.clear()
        return batch

    async def _send(self, batch: list[_Entry]) -> None:
        try:
            BATCH_SIZE.labels(self.sink.name).observe(len(batch))
            try:
                report = await self.sink.send([entry.event for entry in batch])
            except Exception:
                # A bug in a sink must not lose events: treat it like an outage.
                log.exception("%s failed to send a batch of %d", self.sink.name, len(batch))
                report = SendReport(failed={entry.event.insert_id for entry in batch})
            self._settle(batch, report)
        except asyncio.CancelledError:
            # Shutting down mid-send: nobody acknowledges these, the broker hands them out again.
            for entry in batch:
                for waiter in entry.waiters:
                    waiter.cancel()
            raise
        finally:
            self._slots.release()

    def _settle(self, batch: list[_Entry], report: SendReport) -> None:
        counts = dict.fromkeys(SINK_OUTCOMES, 0)
        for entry in batch:
            insert_id = entry.event.insert_id
            failed = insert_id in report.failed
            outcome = (
                "failed" if failed else "rejected" if insert_id in report.rejected else "accepted"
            )
            counts[outcome] += 1
            for waiter in entry.waiters:
                if waiter.done():  # its consumer went away; the broker redelivers the message
                    continue
                if failed:
                    waiter.set_exception(Retry(f"{self.sink.name} is unavailable"))
                else:
                    waiter.set_result(None)
        for outcome, count in counts.items():
            if count:
                SINK_EVENTS.labels(self.sink.name, outcome).inc(count)
        if counts["failed"] == len(batch):
            self._failed_at = time.monotonic()
        else:
            self._failed_at = None


def _forget(waiter: asyncio.Future[None]) -> None:
    if not waiter.cancelled() and waiter.exception() is not None:
        log.warning("a client event was dropped: %s", waiter.exception())
