"""Failures on the way: the store breaking mid-upload, the pool full, the database refusing."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
from media_http import upload
from media_images import jpeg
from media_s3 import S3, s3_settings

from media.app import SERVICE, build_app
from media.imaging import Fit, Rendered, Target, render
from media.processing import Overloaded, Processor
from media.settings import MediaSettings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import running
from rtmn_shared.testing.waiting import wait_for

SMALL = Target("small", 100, 100, Fit.COVER)


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.new_bucket(f"faults-{uuid.uuid4().hex[:12]}")


async def test_a_store_failure_on_the_second_variant_leaves_no_object_row_or_event(
    suite: Suite, s3: S3, bucket: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    settings = MediaSettings(**s3_settings(s3, bucket))
    async with running(SERVICE, settings, consumers=False, relay=False) as media:
        rows = await admin.fetchval("SELECT count(*) FROM media.media")
        events = await admin.fetchval("SELECT count(*) FROM media.outbox")
        # AccessDenied is not retried by botocore, so exactly the second PutObject fails.
        s3.fake.fail_next_put(1, status=403, code="AccessDenied", skip=1)
        status, body, headers = await upload(
            media.client, suite.bearer("u-flaky"), jpeg(1300, 1250)
        )
        assert status == 503, body
        assert "Retry-After" in headers
        puts = [r for r in s3.fake.requests if r.method == "PUT" and bucket + "/" in r.path]
        assert [r.status for r in puts].count(403) == 1
        assert len(puts) == 4  # the others made it, and were then taken back out
        assert s3.keys(bucket) == []
        assert await admin.fetchval("SELECT count(*) FROM media.media") == rows
        assert await admin.fetchval("SELECT count(*) FROM media.outbox") == events
        # The next upload, with the store working again, is whole.
        status, body, _ = await upload(media.client, suite.bearer("u-flaky"), jpeg(1300, 1250))
        assert status == 201, body
        assert len(s3.keys(bucket)) == 4


class Gate:
    """A render that waits until the test opens the gate: a worker that stays busy."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, data: bytes, targets: Sequence[Target], **options: Any) -> Rendered:
        self.entered.release()
        self.open.wait(timeout=30)
        return render(data, targets, **options)


async def test_a_full_pool_answers_503_with_retry_after_instead_of_queueing(
    suite: Suite, s3: S3
) -> None:
    gate = Gate()
    processor = Processor(workers=1, queue=1, max_pixels=40_000_000, render_fn=gate)

    async def build(settings: MediaSettings, stack: AsyncExitStack) -> Any:
        stack.callback(processor.close)
        return await build_app(settings, stack, processor=processor)

    bucket = s3.new_bucket(f"busy-{uuid.uuid4().hex[:12]}")
    service = dataclasses.replace(SERVICE, build_app=build)
    async with running(
        service, MediaSettings(**s3_settings(s3, bucket)), consumers=False, relay=False
    ) as media:
        # Three users: one user's own uploads meet their in-flight cap (429) before this.
        first = asyncio.ensure_future(upload(media.client, suite.bearer("u-1"), jpeg(300, 300)))
        second = asyncio.ensure_future(upload(media.client, suite.bearer("u-2"), jpeg(300, 300)))
        await wait_for(lambda: processor.full, message="one working, one queued")
        headers = suite.bearer("u-busy")
        status, body, response_headers = await upload(media.client, headers, jpeg(300, 300))
        assert status == 503, body
        assert response_headers["Retry-After"] == "1"
        assert body["status"] == 503
        gate.open.set()
        assert [(await first)[0], (await second)[0]] == [201, 201]
        assert len(s3.keys(bucket)) == 8
        await wait_for(lambda: not processor.full, message="capacity back")
        status, _, _ = await upload(media.client, headers, jpeg(300, 300))
        assert status == 201


async def test_a_cancelled_caller_keeps_its_slot_until_the_worker_is_done() -> None:
    gate = Gate()
    processor = Processor(workers=1, queue=0, max_pixels=40_000_000, render_fn=gate)
    try:
        task = asyncio.ensure_future(processor.render(jpeg(200, 200), [SMALL]))
        await wait_for(lambda: gate.entered.acquire(blocking=False), message="worker started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The thread still works on it, so a new image must not be admitted yet.
        with pytest.raises(Overloaded):
            await processor.render(jpeg(200, 200), [SMALL])
        gate.open.set()
        await wait_for(lambda: not processor.full, message="slot released when the thread ends")
    finally:
        gate.open.set()
        processor.close()


async def test_when_the_database_refuses_the_row_the_stored_objects_are_taken_back(
    suite: Suite, s3: S3, bucket: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    settings = MediaSettings(**s3_settings(s3, bucket))
    async with running(SERVICE, settings, consumers=False, relay=False) as media:
        events = await admin.fetchval("SELECT count(*) FROM media.outbox")
        await admin.execute("REVOKE INSERT ON media.media FROM rtmn_media")
        try:
            status, body, _ = await upload(media.client, suite.bearer("u-db"), jpeg(600, 600))
        finally:
            await admin.execute("GRANT INSERT ON media.media TO rtmn_media")
        assert status == 500, body
        assert "correlation_id" in body
        puts = [r for r in s3.fake.requests if r.method == "PUT" and bucket + "/" in r.path]
        assert len(puts) == 4  # stored first, as they must be before the row...
        assert s3.keys(bucket) == []  # ...and removed when the row could not be written
        assert await admin.fetchval("SELECT count(*) FROM media.outbox") == events
