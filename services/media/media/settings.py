"""The media service's settings, under the seed guide's environment names where it had them."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from rtmn_shared.settings import CommonSettings

MB = 1024 * 1024


class MediaSettings(CommonSettings):
    # S3: with no bucket the sandbox store (a local directory) is used instead.
    aws_s3_bucket: str | None = None
    aws_region: str = "ap-south-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_endpoint_url: str | None = Field(
        default=None, description="an S3-compatible store (MinIO, moto) instead of AWS"
    )
    cdn_base_url: str | None = Field(
        default=None, description="e.g. https://d1234.cloudfront.net/; else presigned URLs"
    )
    media_presign_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    media_local_dir: Path = Path(".run/media")
    media_public_url: str = Field(
        default="http://localhost:8004", description="where clients reach the sandbox's files"
    )
    media_max_bytes: int = Field(default=5 * MB, ge=1024)
    # Well under Pillow's own bomb threshold (89 MP), so ours always speaks first.
    media_max_pixels: int = Field(default=40_000_000, ge=10_000, le=89_000_000)
    media_original_max_side: int = Field(default=2048, ge=150, le=8192)
    media_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    media_queue: int = Field(default=-1, ge=-1, le=1024, description="-1: 2 per worker")
    # Per user, so that one token cannot take every worker or fill the bucket.
    media_uploads_per_minute: int = Field(default=30, ge=1, le=10_000)
    media_uploads_in_flight: int = Field(default=2, ge=1, le=64)
    media_quota_bytes: int = Field(default=1024 * MB, ge=1024, description="stored bytes per user")

    @model_validator(mode="after")
    def _queue_default(self) -> MediaSettings:
        if self.media_queue < 0:
            object.__setattr__(self, "media_queue", 2 * self.media_workers)
        return self
