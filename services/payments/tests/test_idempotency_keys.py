"""An Idempotency-Key whose first request died before it could release the key."""

from __future__ import annotations

import hashlib

from payments_testkit import Api

from payments.schemas import CreatePayment
from rtmn_shared.db import Pool


def order_of(user: str) -> str:
    return f"ord_abandoned_{user}"


async def leave_a_claim(pool: Pool, user: str, key: str, age_seconds: float) -> None:
    """What a request that died with the database leaves: a claim with nothing made."""
    body = CreatePayment(order_id=order_of(user), gateway="razorpay")
    digest = hashlib.sha256(b"create " + body.model_dump_json().encode())
    await pool.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) "
        "VALUES ($1, $2, $3, now() - make_interval(secs => $4))",
        user,
        key,
        digest.hexdigest(),
        age_seconds,
    )


async def test_a_claim_abandoned_long_ago_is_taken_over_by_the_same_request(
    api: Api, pool: Pool, user: str
) -> None:
    await leave_a_claim(pool, user, "died-with-the-db", age_seconds=600)

    response = await api.create(user, key="died-with-the-db", order_id=order_of(user))

    assert response.status == 201, await response.text()
    payment_id = (await response.json())["payment_id"]
    row = await pool.fetchrow(
        "SELECT resource_id, status_code FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        user,
        "died-with-the-db",
    )
    assert (row["resource_id"], row["status_code"]) == (payment_id, 201)


async def test_a_recent_claim_is_still_in_progress(api: Api, pool: Pool, user: str) -> None:
    await leave_a_claim(pool, user, "still-running", age_seconds=1)

    response = await api.create(user, key="still-running", order_id=order_of(user))

    assert response.status == 409
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user) == 0
