"""A route's own body cap, in place of the app's MAX_BODY_BYTES (webhooks batch more than 64 KiB).

The gateway's `client_max_body_size` for the same location is the same number
(tests/deploy/test_gateway_config.py), so a body is refused in one place for one reason.
"""

from __future__ import annotations

from aiohttp import web

from rtmn_shared.web.problems import Problem

CHUNK = 64 * 1024


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The raw body, refused with 413 past `limit` bytes (declared or streamed)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks, size = [], 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> Problem:
    return Problem(413, f"the body is larger than this route takes ({limit} bytes)")
