"""aioboto3 (the media service's client) against S3Fake: moto behind a failing proxy."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from rtmn_fakes.s3 import S3Fake

BUCKET = "media"


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[S3Fake]:
    async with S3Fake() as fake:
        yield fake


@pytest.fixture
async def s3(fake: S3Fake) -> AsyncIterator[Any]:
    fake.reset()
    session = aioboto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    # botocore's max_attempts counts retries, not attempts: 0 means one try.
    config = AioConfig(retries={"mode": "standard", "max_attempts": 0})
    async with session.client("s3", endpoint_url=fake.endpoint_url, config=config) as client:
        await client.create_bucket(Bucket=BUCKET)
        yield client


async def keys(s3: Any) -> list[str]:
    listing = await s3.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


async def test_objects_round_trip_through_the_proxy(fake: S3Fake, s3: Any) -> None:
    await s3.put_object(
        Bucket=BUCKET, Key="img/1/orig.jpg", Body=b"\xff\xd8jpeg", ContentType="image/jpeg"
    )

    head = await s3.head_object(Bucket=BUCKET, Key="img/1/orig.jpg")
    got = await s3.get_object(Bucket=BUCKET, Key="img/1/orig.jpg")

    assert (head["ContentLength"], head["ContentType"]) == (6, "image/jpeg")
    assert await got["Body"].read() == b"\xff\xd8jpeg"
    assert [r.method for r in fake.requests_to("/img/1/orig.jpg")] == ["PUT", "HEAD", "GET"]


async def test_gzip_encoded_objects_pass_untouched(s3: Any) -> None:
    packed = gzip.compress(b"{}" * 100)
    await s3.put_object(Bucket=BUCKET, Key="a.json", Body=packed, ContentEncoding="gzip")

    got = await s3.get_object(Bucket=BUCKET, Key="a.json")

    assert got["ContentEncoding"] == "gzip"
    assert await got["Body"].read() == packed


async def test_second_variant_store_failure_can_be_cleaned_up(fake: S3Fake, s3: Any) -> None:
    fake.fail_next_put(1, skip=1)
    stored = []

    with pytest.raises(ClientError) as caught:
        for variant in ("orig.jpg", "thumb.webp", "large.webp"):
            key = f"img/2/{variant}"
            await s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
            stored.append(key)
    for key in stored:  # what the caller must do: leave nothing half-written behind
        await s3.delete_object(Bucket=BUCKET, Key=key)

    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert stored == ["img/2/orig.jpg"]
    assert await keys(s3) == []


async def test_non_retryable_failure_and_faults_only_hit_put_object(fake: S3Fake, s3: Any) -> None:
    fake.fail_next_put(1, status=403, code="AccessDenied")

    await s3.list_objects_v2(Bucket=BUCKET)  # not a PutObject: untouched by the armed fault
    with pytest.raises(ClientError) as caught:
        await s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    await s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")

    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert await keys(s3) == ["k"]


async def test_botocore_retries_absorb_a_single_500(fake: S3Fake) -> None:
    session = aioboto3.Session(
        aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
    )
    config = AioConfig(retries={"mode": "standard", "max_attempts": 2})
    fake.reset()
    async with session.client("s3", endpoint_url=fake.endpoint_url, config=config) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        fake.fail_next_put(1)

        await s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")

        assert [r.status for r in fake.requests_to("/media/k", "PUT")] == [500, 200]


async def test_reset_empties_moto(fake: S3Fake, s3: Any) -> None:
    await s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")

    fake.reset()

    with pytest.raises(ClientError):
        await s3.list_objects_v2(Bucket=BUCKET)
    assert fake.requests[-1].status == 404
