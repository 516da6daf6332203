"""The upload use case: reserve quota, render, store every object, then record the media and its
event."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from media import store
from media.domain import Media, StoredRendition, object_key
from media.imaging import Target
from media.processing import Processor
from media.quota import Quota, Reservation
from media.storage import Links, ObjectStore, put_all, remove
from rtmn_shared.events.catalogue import MediaUploaded
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Uploaded:
    media: Media
    urls: dict[str, str]  # rendition name -> URL, as the response and the event carry them


class Uploads:
    def __init__(
        self,
        *,
        unit: UnitOfWork,
        processor: Processor,
        objects: ObjectStore,
        links: Links,
        quota: Quota,
    ) -> None:
        self.unit = unit
        self.quota = quota
        self.processor = processor
        self.objects = objects
        self.links = links
        self.outbox = Outbox("rtmn/media")

    async def upload(
        self, *, owner_id: str, folder: str, kind: str, data: bytes, targets: Sequence[Target]
    ) -> Uploaded:
        """Raises OverQuota, Overloaded, ImageRejected or StoreError; on any of them nothing is
        kept and nothing stays counted against the owner's quota."""
        # The upload's own size holds a place before any work; the real size settles it.
        reservation = await self.quota.reserve(owner_id, len(data))
        try:
            return await self._store(reservation, folder, kind, data, targets)
        except BaseException:
            await asyncio.shield(self.quota.release(reservation))
            raise

    async def _store(
        self,
        reservation: Reservation,
        folder: str,
        kind: str,
        data: bytes,
        targets: Sequence[Target],
    ) -> Uploaded:
        rendered = await self.processor.render(data, targets)
        await self.quota.settle(reservation, sum(len(r.data) for r in rendered.renditions))
        media_id = uuid.uuid4()
        renditions = {
            r.name: StoredRendition(
                object_key(folder, media_id, r.name), r.width, r.height, len(r.data)
            )
            for r in rendered.renditions
        }
        # Made before storing: a URL that cannot be signed must not leave objects behind.
        urls = await self.links.urls({name: r.key for name, r in renditions.items()})
        await put_all(self.objects, {renditions[r.name].key: r.data for r in rendered.renditions})
        media = Media(
            media_id=media_id,
            owner_id=reservation.owner_id,
            folder=folder,
            kind=kind,
            source_format=rendered.source_format,
            source_bytes=len(data),
            source_width=rendered.source_width,
            source_height=rendered.source_height,
            renditions=renditions,
        )
        try:
            await self._record(media, urls)
        except BaseException:
            # Objects without a row would never be found again: take them back out, even
            # when the request is being cancelled, then let the failure carry on.
            await asyncio.shield(remove(self.objects, [r.key for r in renditions.values()]))
            raise
        log.info(
            "stored media %s: %s %dx%d, %d renditions",
            media_id,
            rendered.source_format,
            rendered.source_width,
            rendered.source_height,
            len(renditions),
        )
        return Uploaded(media, urls)

    async def _record(self, media: Media, urls: dict[str, str]) -> None:
        async with self.unit.transaction() as conn:
            await store.insert_media(conn, media)
            await self.outbox.add(
                conn,
                MediaUploaded(
                    media_id=str(media.media_id),
                    owner_id=media.owner_id,
                    folder=media.folder,
                    urls=urls,
                ),
            )
