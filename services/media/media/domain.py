"""What an upload becomes: its folder, its renditions and the object keys they live under."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from media.imaging import Fit, Target

FOLDERS = ("products", "avatars", "banners", "misc")
DEFAULT_FOLDER = "misc"
PRODUCT_FOLDER = "products"

# The seed's variants: square, cover fit, WebP quality 80.
VARIANTS = (
    Target("large", 1200, 1200, Fit.COVER),
    Target("medium", 500, 500, Fit.COVER),
    Target("thumbnail", 150, 150, Fit.COVER),
)
ORIGINAL = "original"
RENDITION_NAMES = (ORIGINAL, *(v.name for v in VARIANTS))

# Keys are made here only; a key read back from a URL path must match this exactly.
KEY_PATTERN = re.compile(
    r"^(?:" + "|".join(FOLDERS) + r")/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"/(?:" + "|".join(RENDITION_NAMES) + r")\.webp\Z"
)


def original_target(max_side: int) -> Target:
    """The uploaded picture itself, uncropped, at the resolution the variants need decoded and
    at most `max_side` (a 12 MP photo gives 2000×1500): a 40 MP upload is never served whole."""
    return Target(ORIGINAL, max_side, max_side, Fit.DECODED)


def object_key(folder: str, media_id: uuid.UUID, rendition: str) -> str:
    """Server-made keys: the client's file name never reaches storage or a URL."""
    if folder not in FOLDERS or rendition not in RENDITION_NAMES:
        raise ValueError(f"no key for folder {folder!r} and rendition {rendition!r}")
    return f"{folder}/{media_id}/{rendition}.webp"


@dataclass(frozen=True)
class StoredRendition:
    key: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class Media:
    media_id: uuid.UUID
    owner_id: str
    folder: str
    kind: str  # "image" or "product"
    source_format: str
    source_bytes: int
    source_width: int
    source_height: int
    renditions: dict[str, StoredRendition]
    created_at: datetime | None = None
