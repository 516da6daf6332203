"""Reading an upload: a multipart body streamed and cut off at the cap, never buffered past it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from rtmn_shared.web.problems import Problem

IMAGE_FIELD = "image"
FOLDER_FIELD = "folder"
CHUNK = 64 * 1024
# Room for the multipart framing and the small text fields around the image.
FORM_OVERHEAD = 16 * 1024
_FIELD_MAX = 256


@dataclass(frozen=True)
class Upload:
    data: bytes
    folder: str | None


async def read_upload(request: web.Request, *, max_bytes: int) -> Upload:
    """The image bytes and the folder field; the client's file name and type are ignored."""
    if request.content_type != "multipart/form-data":
        raise Problem(415, "send the image as multipart/form-data in the field 'image'")
    length = request.content_length
    if length is not None and length > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)  # said so up front: nothing to read
    image: bytes | None = None
    folder: str | None = None
    budget = max_bytes + FORM_OVERHEAD  # for the whole body, whatever its parts are called
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Problem(422, "nested multipart bodies are not accepted")
            if part.name == IMAGE_FIELD and image is None:
                image = await _read_capped(part, min(max_bytes, budget), max_bytes)
                budget -= len(image)
            elif part.name == FOLDER_FIELD and folder is None:
                raw = await _read_capped(part, _FIELD_MAX, max_bytes, field=FOLDER_FIELD)
                budget -= len(raw)
                folder = raw.decode("utf-8", errors="replace").strip()
            else:
                budget -= await _discard_capped(part, budget, max_bytes)
    except (ValueError, ConnectionError, HttpProcessingError) as error:
        # HttpProcessingError: a part header aiohttp cannot parse (InvalidHeader and kin).
        raise Problem(
            400, f"the multipart body could not be read ({type(error).__name__})"
        ) from None
    if not image:
        raise Problem(
            422,
            "the request has invalid fields",
            errors=[{"field": IMAGE_FIELD, "message": "an image file is required"}],
        )
    return Upload(image, folder)


async def _read_capped(
    part: BodyPartReader, cap: int, max_bytes: int, *, field: str | None = None
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > cap:
            if field is not None:
                raise Problem(
                    422,
                    "the request has invalid fields",
                    errors=[{"field": field, "message": "too long"}],
                )
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard_capped(part: BodyPartReader, cap: int, max_bytes: int) -> int:
    """Reads a field we do not use without keeping it; returns its size."""
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > cap:
            raise _too_large(max_bytes)
    return size


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, f"the image must be at most {max_bytes} bytes", max_bytes=max_bytes)
