"""S3 for the media tests: the shared S3 fake, a client that looks inside it, and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtmn_fakes.s3 import S3Fake

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


def s3_settings(s3: S3, bucket: str, **overrides: Any) -> dict[str, Any]:
    return {
        "aws_s3_bucket": bucket,
        "aws_region": REGION,
        "aws_endpoint_url": s3.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        **overrides,
    }
