"""Uploads through HTTP into a real S3 server (moto's), with the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from media_http import chunked_multipart, upload
from media_images import (
    BLUE,
    HTML,
    RED,
    SVG,
    bomb_png,
    decoded,
    gif,
    jpeg,
    png_with_alpha,
    rotated_jpeg,
    truncated_jpeg,
    webp,
)
from media_s3 import S3, s3_settings

from media.app import SERVICE
from media.settings import MediaSettings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

KEY = re.compile(
    r"^(products|avatars|banners|misc)/[0-9a-f-]{36}/(original|large|medium|thumbnail)\.webp$"
)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
async def bucket(s3: S3) -> str:
    return s3.new_bucket(f"media-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
async def media(suite: Suite, s3: S3, bucket: str) -> AsyncIterator[RunningService]:
    settings = MediaSettings(**s3_settings(s3, bucket))
    async with running(SERVICE, settings, consumers=False) as service:
        yield service


@pytest.fixture
def owner(suite: Suite) -> tuple[str, dict[str, str]]:
    user = f"user-{uuid.uuid4().hex[:8]}"
    return user, suite.bearer(user)


async def counts(admin: asyncpg.Connection[asyncpg.Record], s3: S3, bucket: str) -> tuple[int, ...]:
    rows = await admin.fetchval("SELECT count(*) FROM media.media")
    events = await admin.fetchval("SELECT count(*) FROM media.outbox")
    return len(s3.keys(bucket)), rows, events


@pytest.mark.parametrize(
    ("make", "fmt"),
    [(lambda: jpeg(1600, 1250), "JPEG"), (png_with_alpha, "PNG"), (webp, "WEBP")],
    ids=["jpeg", "png", "webp"],
)
async def test_a_product_image_becomes_private_immutable_webp_variants_and_an_event(
    media: RunningService,
    s3: S3,
    bucket: str,
    admin: asyncpg.Connection[asyncpg.Record],
    owner: tuple[str, dict[str, str]],
    make: Any,
    fmt: str,
) -> None:
    user, headers = owner
    status, body, _ = await upload(
        media.client, headers, make(), filename="../../etc/My Secret.jpg"
    )
    assert status == 201, body
    media_id = body["media_id"]
    urls = {"original": body["original"], **body["variants"]}
    assert set(urls) == {"original", "large", "medium", "thumbnail"}
    keys = s3.keys(bucket)
    ours = [k for k in keys if media_id in k]
    assert len(ours) == 4
    for key in ours:
        assert KEY.match(key), key
        assert key.startswith(f"products/{media_id}/")
        assert "Secret" not in key
        assert ".." not in key
        stored = s3.get(bucket, key)
        assert stored["ContentType"] == "image/webp"
        assert stored["CacheControl"] == "public, max-age=31536000, immutable"
        grants = s3.client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert all(g["Grantee"].get("URI") != ALL_USERS for g in grants), grants
        image = decoded(stored["Data"])
        assert image.format == "WEBP"
        assert not image.getexif()
        name = key.rsplit("/", 1)[1].removesuffix(".webp")
        if name != "original":
            side = {"large": 1200, "medium": 500, "thumbnail": 150}[name]
            assert image.size == (min(side, image.width), min(side, image.width))
        # Without a CDN the URL is presigned for this very key.
        assert key in urls[name]
        assert "X-Amz-Signature=" in urls[name]
    row = await admin.fetchrow("SELECT * FROM media.media WHERE media_id = $1", uuid.UUID(media_id))
    assert row is not None
    assert (row["owner_id"], row["folder"], row["kind"], row["source_format"]) == (
        user,
        "products",
        "product",
        fmt,
    )
    sent = await wait_for(
        lambda: admin.fetchrow(
            "SELECT payload, sent_at FROM media.outbox WHERE subject = $1 AND sent_at IS NOT NULL",
            media_id,
        ),
        message="media.uploaded relayed to the broker",
    )
    event = orjson.loads(sent["payload"])
    assert event["type"] == "media.uploaded"
    assert event["data"]["owner_id"] == user
    assert set(event["data"]["urls"]) == set(urls)


async def test_an_exif_rotated_photo_is_stored_upright_and_without_its_metadata(
    media: RunningService, s3: S3, bucket: str, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    status, body, _ = await upload(media.client, headers, rotated_jpeg())
    assert status == 201, body
    for key in [k for k in s3.keys(bucket) if body["media_id"] in k]:
        data = s3.get(bucket, key)["Data"]
        image = decoded(data)
        assert image.height >= image.width  # portrait, as the camera meant it
        assert _near(image.getpixel((image.width // 2, 2)), RED)
        assert _near(image.getpixel((image.width // 2, image.height - 3)), BLUE)
        assert b"RTMN Test Camera" not in data


async def test_a_plain_image_upload_goes_to_the_chosen_folder(
    media: RunningService, s3: S3, bucket: str, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    status, body, _ = await upload(
        media.client, headers, jpeg(800, 600), path="/api/upload/image", folder="avatars"
    )
    assert status == 201, body
    assert body["key"] == f"avatars/{body['media_id']}/original.webp"
    assert (body["width"], body["height"]) == (800, 600)
    assert s3.keys(bucket).count(body["key"]) == 1
    assert body["key"] in body["url"]


async def test_a_folder_outside_the_allow_list_is_refused(
    media: RunningService, s3: S3, bucket: str, admin: Any, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    before = await counts(admin, s3, bucket)
    for folder in ("../secrets", "products/../../x", "uploads"):
        status, body, _ = await upload(
            media.client, headers, jpeg(300, 300), path="/api/upload/image", folder=folder
        )
        assert status == 422, body
        assert body["errors"][0]["field"] == "folder"
    assert await counts(admin, s3, bucket) == before


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (gif, 415),
        (lambda: SVG, 415),
        (lambda: HTML, 415),  # sent as photo.jpg with image/jpeg: neither is believed
        (truncated_jpeg, 422),
        (lambda: bomb_png(100_000, 100_000), 422),
        (lambda: bomb_png(8_000, 6_000), 422),
    ],
    ids=["gif", "svg", "html-as-jpg", "truncated-jpeg", "bomb-png", "over-40mp"],
)
async def test_what_is_not_an_acceptable_image_is_a_problem_and_leaves_nothing(
    media: RunningService,
    s3: S3,
    bucket: str,
    admin: Any,
    owner: tuple[str, dict[str, str]],
    make: Any,
    status: int,
) -> None:
    _, headers = owner
    before = await counts(admin, s3, bucket)
    got, body, response_headers = await upload(media.client, headers, make())
    assert got == status, body
    assert response_headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == status
    assert await counts(admin, s3, bucket) == before
    async with media.client.get("/healthz") as health:
        assert health.status == 200


async def test_a_body_over_5_mb_is_cut_off_with_413_and_nothing_is_stored(
    media: RunningService, s3: S3, bucket: str, admin: Any, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    before = await counts(admin, s3, bucket)
    six_mb = jpeg(320, 240) + b"\0" * (6 * 1024 * 1024)
    # With a Content-Length the service refuses before reading; without one it reads up to
    # the cap and stops there.
    status, body, _ = await upload(media.client, headers, six_mb)
    assert status == 413, body
    assert body["max_bytes"] == 5 * 1024 * 1024
    chunked_headers = {**headers, "Content-Type": "multipart/form-data; boundary=rtmn-boundary"}
    async with media.client.post(
        "/api/upload/product-image", data=chunked_multipart(six_mb), headers=chunked_headers
    ) as response:
        assert response.status == 413
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert await counts(admin, s3, bucket) == before
    # A legitimate upload right after still works: the connection and service are fine.
    status, body, _ = await upload(media.client, headers, jpeg(400, 300))
    assert status == 201, body


async def test_uploads_need_a_bearer_token_and_a_multipart_body(
    media: RunningService, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    async with media.client.post("/api/upload/image", data=b"x") as response:
        assert response.status == 401
    async with media.client.post(
        "/api/upload/image", json={"image": "aGVsbG8="}, headers=headers
    ) as response:
        assert response.status == 415
    status, body, _ = await upload(media.client, headers, b"", path="/api/upload/image")
    assert status == 422
    assert body["errors"][0]["field"] == "image"


async def test_media_can_be_read_back_by_its_owner_with_fresh_urls(
    media: RunningService, suite: Suite, owner: tuple[str, dict[str, str]]
) -> None:
    user, headers = owner
    status, body, _ = await upload(media.client, headers, jpeg(700, 500))
    assert status == 201
    path = f"/api/media/{body['media_id']}"
    async with media.client.get(path, headers=headers) as response:
        assert response.status == 200
        view = await response.json()
    assert view["owner_id"] == user
    assert view["source_format"] == "JPEG"
    assert (view["source_width"], view["source_height"]) == (700, 500)
    assert {n: (r["width"], r["height"]) for n, r in view["renditions"].items()} == {
        "original": (700, 500),
        "large": (500, 500),
        "medium": (500, 500),
        "thumbnail": (150, 150),
    }
    # The presigned URL reaches the private object itself.
    async with (
        aiohttp.ClientSession() as session,
        session.get(view["renditions"]["thumbnail"]["url"]) as fetched,
    ):
        assert fetched.status == 200
        assert decoded(await fetched.read()).size == (150, 150)
    async with media.client.get(path, headers=suite.bearer("someone-else")) as response:
        assert response.status == 404
    async with media.client.get(path, headers=suite.bearer("ops", "admin")) as response:
        assert response.status == 404  # no super-scope: `admin` means nothing here
    async with media.client.get(path, headers=suite.bearer("ops", "media:read-any")) as response:
        assert response.status == 200
    async with media.client.get("/api/media/not-a-uuid", headers=headers) as response:
        assert response.status == 404


def _near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


async def test_a_damaged_image_is_answered_in_our_words_not_pillows(
    media: RunningService, owner: tuple[str, dict[str, str]]
) -> None:
    # Pillow says "image file is truncated (38 bytes not processed)": library text, for our logs.
    _, headers = owner
    got, body, _ = await upload(media.client, headers, truncated_jpeg())
    assert got == 422
    assert body["detail"] == "the image data is damaged or truncated"
    assert "not processed" not in str(body)
