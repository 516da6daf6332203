from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from rtmn_fakes.s3 import S3Fake

sys.path.insert(0, str(Path(__file__).parent))

REGION = "us-east-1"  # outside it, create_bucket needs a LocationConstraint


@dataclass
class S3:
    """The S3 fake (moto's real server behind a proxy that can fail requests), and a boto3
    client that looks inside moto directly, past the proxy and its faults."""

    endpoint: str
    client: Any
    fake: S3Fake

    def new_bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def get(self, bucket: str, key: str) -> dict[str, Any]:
        reply = self.client.get_object(Bucket=bucket, Key=key)
        reply["Data"] = reply["Body"].read()
        return dict(reply)


@pytest.fixture(scope="session")
async def s3() -> AsyncIterator[S3]:
    async with S3Fake() as fake:
        client = boto3.client(
            "s3",
            endpoint_url=fake.moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield S3(fake.endpoint_url, client, fake)
        client.close()


def s3_settings(s3: S3, bucket: str, **overrides: Any) -> dict[str, Any]:
    return {
        "aws_s3_bucket": bucket,
        "aws_region": REGION,
        "aws_endpoint_url": s3.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        **overrides,
    }
