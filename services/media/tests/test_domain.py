"""Keys and folders: made by the server only, and recognisable as such."""

from __future__ import annotations

import uuid

import pytest

from media.domain import FOLDERS, KEY_PATTERN, RENDITION_NAMES, object_key


def test_keys_are_folder_uuid_rendition_and_match_the_pattern() -> None:
    media_id = uuid.uuid4()
    for folder in FOLDERS:
        for rendition in RENDITION_NAMES:
            key = object_key(folder, media_id, rendition)
            assert key == f"{folder}/{media_id}/{rendition}.webp"
            assert KEY_PATTERN.match(key)


@pytest.mark.parametrize(
    ("folder", "rendition"),
    [("../etc", "large"), ("products/..", "large"), ("uploads", "large"), ("misc", "../x")],
)
def test_no_key_is_made_outside_the_allow_lists(folder: str, rendition: str) -> None:
    with pytest.raises(ValueError, match="no key"):
        object_key(folder, uuid.uuid4(), rendition)


@pytest.mark.parametrize(
    "key",
    [
        "products/../../etc/passwd",
        "products/00000000-0000-0000-0000-000000000000/large.webp/../x",
        "/products/00000000-0000-0000-0000-000000000000/large.webp",
        "products/00000000-0000-0000-0000-000000000000/large.png",
        "products/my photo.jpg",
        "products/00000000-0000-0000-0000-000000000000/large.webp\n",
    ],
)
def test_anything_else_is_not_a_media_key(key: str) -> None:
    assert KEY_PATTERN.match(key) is None
