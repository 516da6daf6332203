"""Composition root: the pool, the image processor, the object store, and the routes."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from media.api import MediaApi
from media.processing import Processor
from media.providers.local import LocalStore
from media.providers.s3 import S3Store
from media.quota import Quota
from media.settings import MediaSettings
from media.slots import UploadSlots
from media.storage import Links, ObjectStore
from media.uploads import Uploads
from rtmn_shared.service import Service, open_pool, open_redis, open_unit_of_work
from rtmn_shared.suite import SERVICES
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.ratelimit import Limit, RateLimiter

INFO = SERVICES["media"]


async def open_store(settings: MediaSettings, stack: AsyncExitStack) -> ObjectStore:
    if not settings.aws_s3_bucket:
        return LocalStore(settings.media_local_dir, settings.media_public_url)
    secret = settings.aws_secret_access_key
    return await S3Store.open(
        stack,
        bucket=settings.aws_s3_bucket,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        endpoint_url=settings.aws_endpoint_url,
        presign_ttl_s=settings.media_presign_ttl_s,
    )


async def build_app(
    settings: MediaSettings,
    stack: AsyncExitStack,
    objects: ObjectStore | None = None,
    processor: Processor | None = None,
) -> web.Application:
    """`objects` and `processor` replace the configured ones (tests use them to inject faults)."""
    pool = await open_pool(INFO, settings, stack)
    redis = await open_redis(settings, stack)
    objects = objects or await open_store(settings, stack)
    if processor is None:
        processor = Processor(
            workers=settings.media_workers,
            queue=settings.media_queue,
            max_pixels=settings.media_max_pixels,
        )
        stack.callback(processor.close)
    links = Links(objects, settings.cdn_base_url)
    api = MediaApi(
        uploads=Uploads(
            unit=open_unit_of_work(INFO, settings, pool, stack),
            processor=processor,
            objects=objects,
            links=links,
            quota=Quota(pool, settings.media_quota_bytes),
        ),
        limiter=RateLimiter(redis, INFO.name),
        upload_limit=Limit(settings.media_uploads_per_minute, 60),
        slots=UploadSlots(redis, INFO.name, settings.media_uploads_in_flight),
        pool=pool,
        links=links,
        max_bytes=settings.media_max_bytes,
        original_max_side=settings.media_original_max_side,
        local=objects if isinstance(objects, LocalStore) else None,
    )
    return create_app(
        service=INFO.name,
        routes=api.routes(),
        verifier=TokenVerifier.from_settings(settings),
        readiness=Readiness(
            pool=pool,
            redis=redis,
            amqp_url=str(settings.amqp_url),
            providers={"s3": objects.mode},
        ),
        # Uploads stream through request.multipart(), which this cap does not govern; it
        # still bounds every other body (read()/post()).
        max_body_bytes=settings.max_body_bytes,
    )


SERVICE = Service(
    name=INFO.name,
    settings=MediaSettings,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    build_app=build_app,
)
