from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).parent))

REGION = "us-east-1"  # outside it, create_bucket needs a LocationConstraint


@dataclass
class S3:
    """moto's real S3 server on a free port, and a boto3 client to look inside it."""

    endpoint: str
    client: Any

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
def s3() -> Iterator[S3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield S3(endpoint, client)
    client.close()
    server.stop()


def s3_settings(s3: S3, bucket: str, **overrides: Any) -> dict[str, Any]:
    return {
        "aws_s3_bucket": bucket,
        "aws_region": REGION,
        "aws_endpoint_url": s3.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        **overrides,
    }
