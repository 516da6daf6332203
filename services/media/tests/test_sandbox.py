"""With no AWS account: the local store, served by the service itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from media_http import upload
from media_images import decoded, jpeg

from media.app import SERVICE
from media.settings import MediaSettings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running


@pytest.fixture
async def sandbox(suite: Suite, tmp_path: Path) -> AsyncIterator[RunningService]:
    settings = MediaSettings(media_local_dir=tmp_path, media_public_url="http://media.test")
    async with running(SERVICE, settings, consumers=False, relay=False) as media:
        yield media


async def test_the_sandbox_stores_locally_serves_the_files_and_says_it_is_a_sandbox(
    sandbox: RunningService, suite: Suite, tmp_path: Path
) -> None:
    status, body, _ = await upload(sandbox.client, suite.bearer("u-local"), jpeg(900, 700))
    assert status == 201, body
    prefix = "http://media.test/media/files/"
    assert body["original"].startswith(prefix)
    for url in (body["original"], *body["variants"].values()):
        key = url.removeprefix(prefix)
        assert (tmp_path / key).is_file()
        async with sandbox.client.get(f"/media/files/{key}") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/webp"
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert decoded(await response.read()).format == "WEBP"
    async with sandbox.client.get("/readyz") as response:
        assert (await response.json())["providers"] == {"s3": "sandbox"}
    async with sandbox.client.get("/openapi.json") as response:
        upload_spec = (await response.json())["paths"]["/api/upload/product-image"]["post"]
    assert "multipart/form-data" in upload_spec["requestBody"]["content"]


@pytest.mark.parametrize(
    "path",
    [
        "/media/files/../../etc/passwd",
        "/media/files/%2E%2E/%2E%2E/etc/passwd",
        "/media/files/products/not-a-uuid/large.webp",
        "/media/files/products/00000000-0000-0000-0000-000000000000/large.webp",
    ],
)
async def test_the_sandbox_serves_only_media_keys_that_exist(
    sandbox: RunningService, path: str
) -> None:
    async with sandbox.client.get(path) as response:
        assert response.status == 404
