"""HTTP: uploads, reading media back, and (sandbox only) the stored files themselves."""

from __future__ import annotations

import uuid
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from media import store
from media.domain import (
    DEFAULT_FOLDER,
    FOLDERS,
    ORIGINAL,
    PRODUCT_FOLDER,
    VARIANTS,
    Media,
    original_target,
)
from media.imaging import ImageRejected, Target
from media.intake import FOLDER_FIELD, read_upload
from media.processing import Overloaded
from media.providers.local import FILES_PATH, LocalStore
from media.quota import OverQuota
from media.slots import TooManyInFlight, UploadSlots
from media.storage import CACHE_CONTROL, CONTENT_TYPE, Links, StoreError
from media.uploads import Uploaded, Uploads
from rtmn_shared.db import Pool
from rtmn_shared.web.problems import Problem, service_unavailable, too_many_requests
from rtmn_shared.web.ratelimit import Limit, RateLimiter
from rtmn_shared.web.routes import USER, Call, Routes, json_response

READ_ANY = "media:read-any"  # support and moderation: anyone's uploads
MULTIPART = ("multipart/form-data",)


class ImageUploaded(BaseModel):
    media_id: str
    url: str
    key: str
    width: int
    height: int


class Variants(BaseModel):
    thumbnail: str
    medium: str
    large: str


class ProductImageUploaded(BaseModel):
    media_id: str
    original: str
    variants: Variants


class RenditionView(BaseModel):
    url: str
    key: str
    width: int
    height: int
    bytes: int


class MediaView(BaseModel):
    media_id: str
    owner_id: str
    folder: str
    kind: str
    source_format: str
    source_bytes: int
    source_width: int
    source_height: int
    renditions: dict[str, RenditionView]
    created_at: datetime | None


class UploadForm(BaseModel):
    """multipart/form-data: `image` (a JPEG, PNG or WebP file) and optionally `folder`."""

    image: bytes
    folder: str | None = None


class MediaApi:
    def __init__(
        self,
        *,
        uploads: Uploads,
        limiter: RateLimiter,
        upload_limit: Limit,
        slots: UploadSlots,
        pool: Pool,
        links: Links,
        max_bytes: int,
        original_max_side: int,
        local: LocalStore | None,
    ) -> None:
        self.uploads = uploads
        self.limiter = limiter
        self.upload_limit = upload_limit
        self.slots = slots
        self.pool = pool
        self.links = links
        self.max_bytes = max_bytes
        self.original = original_target(original_max_side)
        self.local = local

    def routes(self) -> Routes:
        routes = Routes()
        upload = {"auth": USER, "status": 201, "body": UploadForm, "content_types": MULTIPART}
        routes.post("/api/upload/image", response=ImageUploaded, **upload)(self.upload_image)
        routes.post("/api/upload/product-image", response=ProductImageUploaded, **upload)(
            self.upload_product_image
        )
        routes.get("/api/media/{media_id}", response=MediaView, auth=USER)(self.get_media)
        if self.local is not None:
            routes.get(FILES_PATH + "/{key:.+}")(self.local_file)
        return routes

    async def upload_image(self, call: Call) -> web.StreamResponse:
        """Upload one image: stored as a WebP, EXIF-oriented, sRGB, without metadata."""
        uploaded = await self._upload(call, kind="image", targets=(self.original,))
        original = uploaded.media.renditions[ORIGINAL]
        body = ImageUploaded(
            media_id=str(uploaded.media.media_id),
            url=uploaded.urls[ORIGINAL],
            key=original.key,
            width=original.width,
            height=original.height,
        )
        return json_response(body, status=201)

    async def upload_product_image(self, call: Call) -> web.StreamResponse:
        """Upload a product photo: the original plus 1200, 500 and 150 px square variants."""
        uploaded = await self._upload(call, kind="product", targets=(self.original, *VARIANTS))
        urls = dict(uploaded.urls)
        body = ProductImageUploaded(
            media_id=str(uploaded.media.media_id),
            original=urls.pop(ORIGINAL),
            variants=Variants.model_validate(urls),
        )
        return json_response(body, status=201)

    async def get_media(self, call: Call) -> web.StreamResponse:
        """One upload of the caller's (anyone's, with `media:read-any`) and its renditions' URLs."""
        try:
            media_id = uuid.UUID(call.path("media_id"))
        except ValueError:
            raise Problem(404, "no such media") from None
        media = await store.get_media(self.pool, media_id)
        if media is None or not (media.owner_id == call.user.user_id or call.user.has(READ_ANY)):
            raise Problem(404, "no such media")
        try:
            return json_response(await self._view(media))
        except StoreError:
            raise service_unavailable("media URLs cannot be made now; try again", 5) from None

    async def local_file(self, call: Call) -> web.StreamResponse:
        """The sandbox store's files (a stand-in for the CDN when there is no S3)."""
        assert self.local is not None
        path = self.local.path_of(call.path("key"))
        if path is None or not path.is_file():
            raise Problem(404, "no such file")
        return web.FileResponse(
            path, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": CACHE_CONTROL}
        )

    async def _upload(self, call: Call, *, kind: str, targets: tuple[Target, ...]) -> Uploaded:
        owner = call.user.user_id
        # Per user before anything else, so one user's flood meets their own limits, never
        # the 503 that every user would share.
        retry_after = await self.limiter.hit("upload", owner, self.upload_limit)
        if retry_after is not None:
            raise too_many_requests(
                retry_after,
                f"at most {self.upload_limit.requests} uploads a minute; try again later",
            )
        try:
            async with self.slots.hold(owner):
                return await self._admitted(call, owner, kind, targets)
        except TooManyInFlight:
            raise too_many_requests(
                1, f"at most {self.slots.per_user} uploads at a time; wait for one to finish"
            ) from None

    async def _admitted(
        self, call: Call, owner: str, kind: str, targets: tuple[Target, ...]
    ) -> Uploaded:
        if self.uploads.processor.full:
            raise _busy()  # before reading megabytes we could not process anyway
        upload = await read_upload(call.request, max_bytes=self.max_bytes)
        folder = PRODUCT_FOLDER if kind == "product" else (upload.folder or DEFAULT_FOLDER)
        if kind == "product" and upload.folder not in (None, "", PRODUCT_FOLDER):
            raise _bad_folder()
        if folder not in FOLDERS:
            raise _bad_folder()
        try:
            return await self.uploads.upload(
                owner_id=owner, folder=folder, kind=kind, data=upload.data, targets=targets
            )
        except OverQuota as over:
            raise _over_quota(over) from None
        except Overloaded:
            raise _busy() from None
        except ImageRejected as rejected:
            raise Problem(rejected.status, str(rejected)) from None
        except StoreError:
            raise service_unavailable("image storage is unavailable; try again", 5) from None

    async def _view(self, media: Media) -> MediaView:
        urls = await self.links.urls({n: r.key for n, r in media.renditions.items()})
        return MediaView(
            media_id=str(media.media_id),
            owner_id=media.owner_id,
            folder=media.folder,
            kind=media.kind,
            source_format=media.source_format,
            source_bytes=media.source_bytes,
            source_width=media.source_width,
            source_height=media.source_height,
            renditions={
                name: RenditionView(
                    url=urls[name], key=r.key, width=r.width, height=r.height, bytes=r.bytes
                )
                for name, r in media.renditions.items()
            },
            created_at=media.created_at,
        )


def _busy() -> Problem:
    return service_unavailable("image processing is at capacity; try again shortly", 1)


def _over_quota(over: OverQuota) -> Problem:
    return Problem(
        413,
        f"this image would take your stored media past your quota of {over.quota_bytes} bytes"
        f" ({over.used_bytes} used)",
        quota_bytes=over.quota_bytes,
        used_bytes=over.used_bytes,
    )


def _bad_folder() -> Problem:
    return Problem(
        422,
        "the request has invalid fields",
        errors=[{"field": FOLDER_FIELD, "message": f"must be one of {', '.join(FOLDERS)}"}],
    )
