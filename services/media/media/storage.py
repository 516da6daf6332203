"""Where renditions live: the ObjectStore interface, all-or-nothing writes, and their URLs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

CONTENT_TYPE = "image/webp"
# Keys are never reused (a new upload gets a new uuid), so a copy may be cached for ever.
CACHE_CONTROL = "public, max-age=31536000, immutable"


class StoreError(Exception):
    """The object store did not take or give back an object; worth a retry later."""


class ObjectStore(Protocol):
    mode: str  # "live" or "sandbox", as /readyz reports it

    async def put(self, key: str, data: bytes) -> None:
        """Stores one private object with CONTENT_TYPE and CACHE_CONTROL; raises StoreError."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Removes the objects; keys that do not exist are not an error. Raises StoreError."""

    async def signed_url(self, key: str) -> str:
        """A URL a browser can fetch the private object from, without a CDN."""


async def put_all(store: ObjectStore, objects: Mapping[str, bytes]) -> None:
    """Stores every object or none: after any failure the ones that made it are removed."""
    results = await asyncio.gather(
        *(store.put(key, data) for key, data in objects.items()), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if not failures:
        return
    await remove(store, list(objects))
    for failure in failures:
        if not isinstance(failure, StoreError):
            raise failure  # a bug, not an outage: let it show
    raise StoreError(str(failures[0])) from failures[0]


async def remove(store: ObjectStore, keys: Sequence[str]) -> None:
    """Best-effort clean-up; a failure here leaves orphans, so it is logged with their keys."""
    try:
        await store.delete(keys)
    except StoreError as error:
        log.error("could not remove objects %s: %s", ", ".join(keys), error)


class Links:
    """Turns keys into URLs when they are read: the CDN's when there is one, else signed."""

    def __init__(self, store: ObjectStore, cdn_base_url: str | None) -> None:
        self.store = store
        self.cdn_base_url = cdn_base_url.rstrip("/") + "/" if cdn_base_url else None

    async def url(self, key: str) -> str:
        if self.cdn_base_url is not None:
            return self.cdn_base_url + key
        return await self.store.signed_url(key)

    async def urls(self, keys: Mapping[str, str]) -> dict[str, str]:
        return {name: await self.url(key) for name, key in keys.items()}
