from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest

from rtmn_fakes.s3 import S3Fake

sys.path.insert(0, str(Path(__file__).parent))
from media_s3 import REGION, S3


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
