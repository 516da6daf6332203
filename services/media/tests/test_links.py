"""URLs are made from keys when read: the CDN's when configured, else the store's signed ones."""

from __future__ import annotations

from collections.abc import Sequence

from media.storage import Links


class SigningStore:
    mode = "live"

    async def put(self, key: str, data: bytes) -> None:
        raise AssertionError("not used")

    async def delete(self, keys: Sequence[str]) -> None:
        raise AssertionError("not used")

    async def signed_url(self, key: str) -> str:
        return f"https://bucket.s3.example/{key}?X-Amz-Signature=abc"


async def test_with_a_cdn_the_url_is_its_base_plus_the_key() -> None:
    links = Links(SigningStore(), "https://d123.cloudfront.net")
    assert await links.url("products/x/large.webp") == (
        "https://d123.cloudfront.net/products/x/large.webp"
    )
    assert await Links(SigningStore(), "https://cdn.example/media/").url("a/b.webp") == (
        "https://cdn.example/media/a/b.webp"
    )


async def test_without_a_cdn_the_url_is_presigned() -> None:
    links = Links(SigningStore(), None)
    assert await links.urls({"thumbnail": "misc/x/thumbnail.webp"}) == {
        "thumbnail": "https://bucket.s3.example/misc/x/thumbnail.webp?X-Amz-Signature=abc"
    }
