"""Idempotency-Key: the same key and body get the first response; another body is a 422.

A request that failed before making anything releases its key. One that made a payment or
refund keeps it (`resource_id`), so a retry with the key resumes that resource, never a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from payments import key_store
from rtmn_shared.db import Connection, Pool, write_through_outages
from rtmn_shared.web.problems import Problem

MAX_KEY_LENGTH = 255
RELEASE_WITHIN_SECONDS = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class Claim:
    """What the work sees: the resource an earlier attempt made, and how to record its own."""

    pool: Pool
    user_id: str
    key: str | None
    resource_id: str | None = None

    async def remember(self, conn: Connection, resource_id: str) -> None:
        """Ties the resource to the key, inside the transaction that creates it."""
        self.resource_id = resource_id
        if self.key is not None:
            await key_store.set_key_resource(conn, self.user_id, self.key, resource_id)


Work = Callable[[Claim], Awaitable[Reply]]


async def once(pool: Pool, user_id: str, key: str | None, fingerprint: bytes, work: Work) -> Reply:
    if key is None:
        return await work(Claim(pool, user_id, None))
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Problem(400, f"the Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    digest = hashlib.sha256(fingerprint).hexdigest()
    async with pool.acquire() as conn:
        earlier = await key_store.claim_key(conn, user_id, key, digest)
    claim = Claim(pool, user_id, key)
    if earlier is not None:
        if earlier.request_hash != digest:
            raise Problem(422, "this Idempotency-Key was used with a different request")
        if earlier.status_code is not None and earlier.response is not None:
            return Reply(earlier.status_code, earlier.response, replayed=True)
        if earlier.resource_id is None:
            raise Problem(409, "a request with this Idempotency-Key is still in progress")
        claim.resource_id = earlier.resource_id
    try:
        reply = await work(claim)
    except BaseException:
        # Waits out a short database outage, which is likely what failed the work; a key whose
        # release still fails is taken over after key_store.ABANDONED_AFTER_SECONDS.
        await write_through_outages(
            pool,
            lambda conn: key_store.release_key(conn, user_id, key),
            within=RELEASE_WITHIN_SECONDS,
            one_statement=True,
        )
        raise
    async with pool.acquire() as conn:
        await key_store.complete_key(conn, user_id, key, reply.status, reply.body)
    return reply
