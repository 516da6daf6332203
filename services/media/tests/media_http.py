"""Talking to the media service as a client would."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient


def form(data: bytes, *, filename: str = "photo.jpg", folder: str | None = None) -> FormData:
    body = FormData()
    if folder is not None:
        body.add_field("folder", folder)
    # The client's own claims about the file, which the service must not believe or use.
    body.add_field("image", io.BytesIO(data), filename=filename, content_type="image/jpeg")
    return body


async def upload(
    client: TestClient[Any, Any],
    headers: dict[str, str],
    data: bytes,
    *,
    path: str = "/api/upload/product-image",
    **options: Any,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with client.post(path, data=form(data, **options), headers=headers) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


async def chunked_multipart(
    payload: bytes, boundary: str = "rtmn-boundary"
) -> AsyncIterator[bytes]:
    """A multipart body with no Content-Length: the server only finds its size by reading."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    for start in range(0, len(payload), 256 * 1024):
        yield payload[start : start + 256 * 1024]
    yield f"\r\n--{boundary}--\r\n".encode()
