"""Amazon S3 (or any S3-compatible store) through aioboto3: private objects, presigned reads."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from media.storage import CACHE_CONTROL, CONTENT_TYPE, StoreError

# S3's DeleteObjects takes at most 1000 keys a call; an upload has 4.
_DELETE_BATCH = 1000


class S3Store:
    mode = "live"

    def __init__(self, client: Any, bucket: str, *, presign_ttl_s: int) -> None:
        self._client = client
        self.bucket = bucket
        self.presign_ttl_s = presign_ttl_s

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        *,
        bucket: str,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        endpoint_url: str | None,
        presign_ttl_s: int,
        timeout_s: float = 10.0,
    ) -> S3Store:
        # Without keys boto finds its own (instance role, web identity, profile).
        session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        config = AioConfig(
            connect_timeout=min(timeout_s, 3.0),
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            signature_version="s3v4",
        )
        client = await stack.enter_async_context(
            session.client("s3", endpoint_url=endpoint_url, config=config)
        )
        return cls(client, bucket, presign_ttl_s=presign_ttl_s)

    async def put(self, key: str, data: bytes) -> None:
        # No ACL: objects stay private; readers go through the CDN or a presigned URL.
        try:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=CONTENT_TYPE,
                CacheControl=CACHE_CONTROL,
            )
        except (BotoCoreError, ClientError) as error:
            raise StoreError(f"S3 put {key}: {_describe(error)}") from error

    async def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            try:
                reply = await self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise StoreError(f"S3 delete: {_describe(error)}") from error
            if reply.get("Errors"):
                failed = ", ".join(e.get("Key", "?") for e in reply["Errors"])
                raise StoreError(f"S3 delete failed for {failed}")

    async def signed_url(self, key: str) -> str:
        try:
            url: str = await self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_ttl_s,
            )
        except (BotoCoreError, ClientError) as error:  # e.g. no credentials to sign with
            raise StoreError(f"S3 presign {key}: {_describe(error)}") from error
        return url


def _describe(error: BotoCoreError | ClientError) -> str:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "?")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{code} (HTTP {status})"
    return type(error).__name__
