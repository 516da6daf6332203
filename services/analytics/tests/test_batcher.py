"""Batching rules with an in-memory sink: size, age, outcomes and who waits for what."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from analytics.batcher import Batcher, Full
from analytics.domain import AnalyticsEvent
from analytics.providers.base import Mode, SendReport
from rtmn_shared.events.outcomes import Retry
from rtmn_shared.testing.waiting import wait_for


class ScriptedSink:
    name = "scripted"
    mode: Mode = "sandbox"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.reports: list[SendReport] = []
        self.release = asyncio.Event()
        self.release.set()
        self.sending = asyncio.Event()  # a batch reached the sink, accepted or not yet

    async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
        self.sending.set()
        await self.release.wait()
        self.batches.append([e.insert_id for e in events])
        return self.reports.pop(0) if self.reports else SendReport()


def event(insert_id: str | None = None) -> AnalyticsEvent:
    return AnalyticsEvent(
        insert_id=insert_id or str(uuid.uuid4()),
        name="screen_view",
        user_id="u1",
        time=datetime.now(UTC),
        properties={},
    )


@pytest.fixture
def sink() -> ScriptedSink:
    return ScriptedSink()


@pytest.fixture
async def batcher(sink: ScriptedSink) -> AsyncIterator[Batcher]:
    batcher = Batcher(sink, max_events=10, max_delay_seconds=0.1, max_pending=25)
    batcher.start()
    yield batcher
    await batcher.close()


async def test_a_full_batch_leaves_at_once_and_the_rest_after_the_delay(
    batcher: Batcher, sink: ScriptedSink
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(batcher.submit(event()) for _ in range(25)))
    assert [len(b) for b in sink.batches] == [10, 10, 5]
    assert loop.time() - started < 1.0


async def test_a_lone_event_waits_no_longer_than_the_delay(
    batcher: Batcher, sink: ScriptedSink
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await batcher.submit(event())
    assert 0.08 <= loop.time() - started < 0.6
    assert len(sink.batches) == 1


async def test_events_the_sink_could_not_deliver_raise_retry_and_refused_ones_return(
    batcher: Batcher, sink: ScriptedSink
) -> None:
    ok, refused, lost = event(), event(), event()
    sink.reports.append(SendReport(rejected={refused.insert_id: "bad"}, failed={lost.insert_id}))
    results = await asyncio.gather(
        batcher.submit(ok), batcher.submit(refused), batcher.submit(lost), return_exceptions=True
    )
    assert results[0] is None
    assert results[1] is None  # refused as invalid: acknowledged, never retried
    assert isinstance(results[2], Retry)


async def test_the_same_event_twice_in_one_batch_is_sent_once(
    batcher: Batcher, sink: ScriptedSink
) -> None:
    twice = event()
    await asyncio.gather(batcher.submit(twice), batcher.submit(twice), batcher.submit(event()))
    assert sink.batches[0].count(twice.insert_id) == 1


async def test_nothing_returns_before_its_batch_was_accepted(
    batcher: Batcher, sink: ScriptedSink
) -> None:
    sink.release.clear()
    waiting = asyncio.ensure_future(batcher.submit(event()))
    await asyncio.wait_for(sink.sending.wait(), 2)  # the batch is with the sink, unanswered
    assert not waiting.done()
    sink.release.set()
    await asyncio.wait_for(waiting, 2)


async def test_a_full_buffer_refuses_more(batcher: Batcher, sink: ScriptedSink) -> None:
    sink.release.clear()
    waiters = [batcher.offer(event()) for _ in range(25)]
    assert not batcher.has_room()
    with pytest.raises(Full):
        batcher.offer(event())
    sink.release.set()
    await asyncio.gather(*waiters)


async def test_a_sink_that_raises_counts_as_unavailable(sink: ScriptedSink) -> None:
    class Broken(ScriptedSink):
        async def send(self, events: Sequence[AnalyticsEvent]) -> SendReport:
            raise RuntimeError("bug")

    batcher = Batcher(Broken(), max_events=1, max_delay_seconds=0.05)
    batcher.start()
    try:
        with pytest.raises(Retry):
            await batcher.submit(event())
    finally:
        await batcher.close()


async def test_closing_mid_send_leaves_every_waiter_unanswered(sink: ScriptedSink) -> None:
    batcher = Batcher(sink, max_events=1, max_delay_seconds=0.01)
    batcher.start()
    sink.release.clear()
    queued = asyncio.ensure_future(batcher.submit(event()))
    await wait_for(lambda: batcher.pending == 0, message="the batch left")
    await batcher.close(grace_seconds=0.05)
    with pytest.raises(asyncio.CancelledError):
        await queued  # its message is never acknowledged, so the broker delivers it again


def test_each_outcome_of_a_sink_is_exported_at_zero_before_any_batch() -> None:
    """The dashboard shows 0 rejected and failed events for a healthy sink, not no data."""
    sink = ScriptedSink()
    sink.name = "zeros"
    Batcher(sink, max_events=10, max_delay_seconds=0.1)
    for outcome in ("accepted", "rejected", "failed"):
        labels = {"sink": "zeros", "outcome": outcome}
        assert REGISTRY.get_sample_value("rtmn_analytics_events_total", labels) == 0.0
