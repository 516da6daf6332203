"""The sandbox store: a local directory, served by the service itself at /media/files/."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from media.domain import KEY_PATTERN
from media.storage import StoreError

log = logging.getLogger(__name__)

FILES_PATH = "/media/files"


class LocalStore:
    mode = "sandbox"

    def __init__(self, root: Path, public_base_url: str) -> None:
        self.root = root.resolve()
        self.public_base_url = public_base_url.rstrip("/")
        log.warning(
            "sandbox object store: media written to %s and served by this service, not S3",
            self.root,
        )

    def path_of(self, key: str) -> Path | None:
        """The file of a key we made; None for anything else (e.g. `../` in a URL)."""
        return self.root / key if KEY_PATTERN.match(key) else None

    async def put(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        if path is None:
            raise StoreError(f"not a media key: {key!r}")
        try:
            await asyncio.to_thread(_write, path, data)
        except OSError as error:
            raise StoreError(f"local put {key}: {error}") from error

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [p for p in map(self.path_of, keys) if p is not None]
        try:
            await asyncio.to_thread(_unlink, paths)
        except OSError as error:
            raise StoreError(f"local delete: {error}") from error

    async def signed_url(self, key: str) -> str:
        return f"{self.public_base_url}{FILES_PATH}/{key}"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, path)  # readers never see half a file


def _unlink(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    for parent in {p.parent for p in paths}:
        if parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
