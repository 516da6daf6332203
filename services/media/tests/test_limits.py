"""Per-user limits on uploads: a rate, a cap on uploads in flight and a storage quota, on the
real PostgreSQL, Redis and S3 (moto) with a real image pool whose renders the test can hold."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
from media_gate import Gate
from media_http import upload
from media_images import encode, jpeg, photo, truncated_jpeg
from media_s3 import S3, s3_settings

from media.app import SERVICE, build_app
from media.domain import VARIANTS, original_target
from media.imaging import render
from media.processing import Processor
from media.settings import MediaSettings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

MAX_PIXELS = 40_000_000
PRODUCT = (original_target(2048), *VARIANTS)


@asynccontextmanager
async def media_with(
    s3: S3, processor: Processor, **overrides: Any
) -> AsyncIterator[tuple[RunningService, str]]:
    """The media service on its own bucket, rendering in `processor`."""

    async def build(settings: MediaSettings, stack: AsyncExitStack) -> Any:
        stack.callback(processor.close)
        return await build_app(settings, stack, processor=processor)

    bucket = s3.new_bucket(f"limits-{uuid.uuid4().hex[:12]}")
    settings = MediaSettings(**s3_settings(s3, bucket, **overrides))
    service = dataclasses.replace(SERVICE, build_app=build)
    async with running(service, settings, consumers=False, relay=False) as media:
        yield media, bucket


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def stored_size(data: bytes) -> int:
    """What a product upload of `data` stores: its renditions' bytes (the same encoder)."""
    return sum(len(r.data) for r in render(data, PRODUCT, max_pixels=MAX_PIXELS).renditions)


def small_source() -> bytes:
    """A low-quality JPEG whose WebP renditions take several times its own size."""
    return encode(photo(1600, 1200), "JPEG", quality=20)


async def used(admin: asyncpg.Connection[asyncpg.Record], owner: str) -> int:
    value = await admin.fetchval("SELECT used_bytes FROM media.usage WHERE owner_id = $1", owner)
    return int(value or 0)


async def media_rows(admin: asyncpg.Connection[asyncpg.Record], owner: str) -> int:
    return int(await admin.fetchval("SELECT count(*) FROM media.media WHERE owner_id = $1", owner))


async def test_one_user_flooding_gets_429s_while_another_users_upload_succeeds(
    suite: Suite, s3: S3
) -> None:
    flood_image, other_image = jpeg(300, 300), jpeg(320, 240)
    gate = Gate(holds=lambda data: data == flood_image)
    # Three workers and no queue: without a per-user cap the flood would take all three.
    processor = Processor(workers=3, queue=0, max_pixels=MAX_PIXELS, render_fn=gate)
    async with media_with(s3, processor, media_uploads_in_flight=2, media_uploads_per_minute=6) as (
        media,
        _,
    ):
        flooder = suite.bearer(user())
        try:
            held = [
                asyncio.ensure_future(upload(media.client, flooder, flood_image)) for _ in range(2)
            ]
            await wait_for(lambda: gate.held == 2, message="the flooder's two uploads in flight")
            beyond_cap = await asyncio.gather(
                *(upload(media.client, flooder, flood_image) for _ in range(4))
            )
            for status, body, headers in beyond_cap:
                assert status == 429, body
                assert headers["Content-Type"].startswith("application/problem+json")
                assert headers["Retry-After"] == "1"
                assert "at most 2 uploads at a time" in body["detail"]
            # The seventh upload in the minute is over the rate, whatever is in flight.
            status, body, headers = await upload(media.client, flooder, flood_image)
            assert status == 429, body
            assert "at most 6 uploads a minute" in body["detail"]
            assert 1 <= int(headers["Retry-After"]) <= 60
            # Meanwhile another user's upload takes the worker the flood could not.
            status, body, _ = await upload(media.client, suite.bearer(user()), other_image)
            assert status == 201, body
            assert not processor.full
        finally:
            gate.open.set()
        assert [(await task)[0] for task in held] == [201, 201]
        status, body, _ = await upload(media.client, flooder, flood_image)
        assert status == 429, body  # still over the rate after its uploads finished
        assert "a minute" in body["detail"]


async def test_an_upload_past_the_quota_is_413_and_stores_and_counts_nothing(
    suite: Suite, s3: S3, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    image = small_source()
    size = stored_size(image)
    quota = size + size // 2  # room for one, not two
    processor = Processor(workers=2, queue=2, max_pixels=MAX_PIXELS)
    async with media_with(s3, processor, media_quota_bytes=quota) as (media, bucket):
        owner = user()
        status, body, _ = await upload(media.client, suite.bearer(owner), image)
        assert status == 201, body
        assert await used(admin, owner) == size
        keys = s3.keys(bucket)
        assert len(keys) == 4
        status, body, headers = await upload(media.client, suite.bearer(owner), image)
        assert status == 413, body
        assert headers["Content-Type"].startswith("application/problem+json")
        assert body["quota_bytes"] == quota
        assert body["used_bytes"] == size
        assert f"quota of {quota} bytes" in body["detail"]
        assert s3.keys(bucket) == keys
        assert await used(admin, owner) == size
        assert await media_rows(admin, owner) == 1
        # An image larger than what is left is refused before it is processed.
        status, body, _ = await upload(media.client, suite.bearer(owner), jpeg(1600, 1200))
        assert status == 413, body
        assert await used(admin, owner) == size
        # The quota is each user's own.
        status, body, _ = await upload(media.client, suite.bearer(user()), image)
        assert status == 201, body


async def test_two_concurrent_uploads_that_together_pass_the_quota_store_only_one(
    suite: Suite, s3: S3, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    image = small_source()
    size = stored_size(image)
    gate = Gate()
    processor = Processor(workers=2, queue=0, max_pixels=MAX_PIXELS, render_fn=gate)
    async with media_with(s3, processor, media_quota_bytes=2 * size - 1) as (media, bucket):
        owner = user()
        headers = suite.bearer(owner)
        try:
            both = [asyncio.ensure_future(upload(media.client, headers, image)) for _ in range(2)]
            # Both reserved their (smaller) source size and are being processed at once.
            await wait_for(lambda: gate.held == 2, message="both uploads in processing")
        finally:
            gate.open.set()
        results = [await task for task in both]
        assert sorted(status for status, _, _ in results) == [201, 413], results
        assert await used(admin, owner) == size
        assert await media_rows(admin, owner) == 1
        assert len(s3.keys(bucket)) == 4


async def test_an_upload_that_fails_gives_its_reservation_back(
    suite: Suite, s3: S3, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    image = small_source()
    size = stored_size(image)
    processor = Processor(workers=2, queue=2, max_pixels=MAX_PIXELS)
    async with media_with(s3, processor, media_quota_bytes=size + size // 2) as (media, bucket):
        owner = user()
        headers = suite.bearer(owner)
        status, body, _ = await upload(media.client, headers, truncated_jpeg())
        assert status == 422, body  # refused while processing
        assert await used(admin, owner) == 0
        s3.fake.fail_next_put(1, status=403, code="AccessDenied", skip=1)
        status, body, _ = await upload(media.client, headers, image)
        assert status == 503, body  # processed and counted, then the store failed
        assert await used(admin, owner) == 0
        assert s3.keys(bucket) == []
        # Had either kept its bytes, this one would no longer fit.
        status, body, _ = await upload(media.client, headers, image)
        assert status == 201, body
        assert await used(admin, owner) == size
