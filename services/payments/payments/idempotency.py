"""Idempotency-Key: the same key and body get the first response; another body is a 422.

A request that failed before making anything releases its key. One that made a payment or
refund keeps it (`resource_id`), so a retry with the key resumes that resource, never a second.
A create claims its key in the statement that stores its payment (`order_store.insert_payment`);
a refund claims it first (`once`), as it decides under the payment's lock what it may make.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from payments import key_store
from payments.key_store import Key, KeyRecord
from rtmn_shared.db import Connection, Pool, write_through_outages
from rtmn_shared.web.problems import Problem

MAX_KEY_LENGTH = 255
RELEASE_WITHIN_SECONDS = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def key_of(user_id: str, key: str | None, fingerprint: bytes) -> Key | None:
    """The request's Idempotency-Key, if it sent one, with the digest of what it asks."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Problem(400, f"the Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    return Key(user_id, key, hashlib.sha256(fingerprint).hexdigest())


def earlier_request(record: KeyRecord, key: Key) -> Reply | str:
    """What the earlier request with this key left: its answer, to replay, or the resource it
    made, to resume; a 422 for another request under the key, a 409 while it makes nothing yet."""
    if record.request_hash != key.request_hash:
        raise Problem(422, "this Idempotency-Key was used with a different request")
    if record.status_code is not None and record.response is not None:
        return Reply(record.status_code, record.response, replayed=True)
    if record.resource_id is None:
        raise Problem(409, "a request with this Idempotency-Key is still in progress")
    return record.resource_id


@dataclass
class Claim:
    """What the work sees: the resource an earlier attempt made, and how to record its own."""

    pool: Pool
    key: Key | None
    resource_id: str | None = None

    async def remember(self, conn: Connection, resource_id: str) -> None:
        """Ties the resource to the key, inside the transaction that creates it."""
        self.resource_id = resource_id
        if self.key is not None:
            await key_store.set_key_resource(conn, self.key, resource_id)


Work = Callable[[Claim], Awaitable[Reply]]


async def once(pool: Pool, key: Key | None, work: Work) -> Reply:
    if key is None:
        return await work(Claim(pool, None))
    async with pool.acquire() as conn:
        earlier = await key_store.claim_key(conn, key)
    claim = Claim(pool, key)
    if earlier is not None:
        found = earlier_request(earlier, key)
        if isinstance(found, Reply):
            return found
        claim.resource_id = found
    try:
        reply = await work(claim)
    except BaseException:
        # Waits out a short database outage, which is likely what failed the work; a key whose
        # release still fails is taken over after key_store.ABANDONED_AFTER_SECONDS.
        await write_through_outages(
            pool,
            lambda conn: key_store.release_key(conn, key),
            within=RELEASE_WITHIN_SECONDS,
            one_statement=True,
        )
        raise
    async with pool.acquire() as conn:
        await key_store.complete_key(conn, key, reply.status, reply.body)
    return reply
