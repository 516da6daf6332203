"""Notify's SQL: recipients, devices, the delivery log and its per-token push targets."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify.domain import OrderFacts, Recipient
from notify.providers import TokenResult
from rtmn_shared.db import Connection, Pool
from rtmn_shared.events.catalogue import (
    OrderPlaced,
    PaymentSuccess,
    UserRegistered,
    WalletCashbackQuoted,
    WalletCredited,
    WalletDebited,
)
from rtmn_shared.events.outbox import OutboxRow


@dataclass(frozen=True)
class DeliveryKey:
    """What makes a delivery unique: its source event (or request), channel, user, template."""

    source: str
    event_id: uuid.UUID
    channel: str
    user_id: str
    template: str


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    attempts: int


# -- recipients -----------------------------------------------------------------------------


async def upsert_recipient(conn: Connection, user: UserRegistered, as_of: datetime) -> None:
    # A field the event leaves out keeps its old value; an older event never wins.
    await conn.execute(
        """
        INSERT INTO recipients (user_id, email, first_name, phone, locale, tier, as_of)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (user_id) DO UPDATE SET
            email = COALESCE(EXCLUDED.email, recipients.email),
            first_name = COALESCE(EXCLUDED.first_name, recipients.first_name),
            phone = COALESCE(EXCLUDED.phone, recipients.phone),
            locale = COALESCE(EXCLUDED.locale, recipients.locale),
            tier = COALESCE(EXCLUDED.tier, recipients.tier),
            as_of = EXCLUDED.as_of,
            updated_at = now()
        WHERE recipients.as_of <= EXCLUDED.as_of
        """,
        user.user_id,
        user.email,
        user.first_name,
        user.phone,
        user.locale,
        user.tier,
        as_of,
    )


async def recipient(pool: Pool, user_id: str) -> Recipient | None:
    row = await pool.fetchrow(
        "SELECT user_id, email, first_name, locale, tier FROM recipients WHERE user_id = $1",
        user_id,
    )
    return None if row is None else _recipient(row)


def _recipient(row: Any) -> Recipient:
    return Recipient(row["user_id"], row["email"], row["first_name"], row["locale"], row["tier"])


class Locales:
    """Users' locales, for the words of a push (None: unknown user or none given), each read at
    most once a `ttl` per process: every payment sends pushes to a user whose locale changes only
    when user.registered says so again. This process forgets a user it records; another one
    words a push in the locale before for at most `ttl` seconds."""

    def __init__(self, pool: Pool, *, ttl: float = 60.0, size: int = 100_000) -> None:
        self._pool, self._ttl, self._size = pool, ttl, size
        self._known: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def of(self, user_id: str) -> str | None:
        now = time.monotonic()
        known = self._known.get(user_id)
        if known is not None and now - known[0] < self._ttl:
            return known[1]
        found: str | None = await self._pool.fetchval(
            "SELECT locale FROM recipients WHERE user_id = $1", user_id
        )
        self._known[user_id] = (now, found)
        self._known.move_to_end(user_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)
        return found

    async def record(self, conn: Connection, user: UserRegistered, at: datetime) -> None:
        """The recipient as user.registered tells, forgetting the locale this process knew."""
        await upsert_recipient(conn, user, at)
        self._known.pop(user.user_id, None)


# -- what the emails tell besides: orders, cashback, coin balances ---------------------------


async def record_order(conn: Connection, order: OrderPlaced) -> None:
    """The order's delivery facts, once: into the row a quote may have made first."""
    await conn.execute(
        """
        INSERT INTO orders (order_id, estimated_delivery, tracking_url) VALUES ($1, $2, $3)
        ON CONFLICT (order_id) DO UPDATE SET
            estimated_delivery = EXCLUDED.estimated_delivery,
            tracking_url = EXCLUDED.tracking_url,
            placed = true
        WHERE NOT orders.placed
        """,
        order.order_id,
        order.estimated_delivery,
        str(order.tracking_url) if order.tracking_url else None,
    )


async def record_quote(conn: Connection, quote: WalletCashbackQuoted) -> None:
    """The coins the wallet quoted for the order, the first quote kept, whichever of it and
    order.placed arrives first."""
    await conn.execute(
        """
        INSERT INTO orders (order_id, coins_quoted, placed) VALUES ($1, $2, false)
        ON CONFLICT (order_id) DO UPDATE SET coins_quoted = EXCLUDED.coins_quoted
        WHERE orders.coins_quoted IS NULL
        """,
        quote.order_id,
        quote.coins,
    )


async def record_coins(
    conn: Connection | Pool, entry: WalletCredited | WalletDebited, as_of: datetime, cashback: bool
) -> None:
    """The user's balance after the entry (unless a later entry's is known), and the coins a
    payment earned (`cashback`: the entry is a payment's cashback)."""
    await conn.execute(
        """
        WITH earned AS (
            INSERT INTO cashback (payment_id, coins) SELECT $4, $5 WHERE $6
            ON CONFLICT (payment_id) DO NOTHING
        )
        INSERT INTO coin_balances (user_id, coins, as_of) VALUES ($1, $2, $3)
        ON CONFLICT (user_id) DO UPDATE SET coins = EXCLUDED.coins, as_of = EXCLUDED.as_of
        WHERE coin_balances.as_of <= EXCLUDED.as_of
        """,
        entry.user_id,
        entry.balance_after,
        as_of,
        entry.reference,
        entry.coins,
        cashback,
    )


async def coin_balance(pool: Pool, user_id: str) -> int:
    coins: int | None = await pool.fetchval(
        "SELECT coins FROM coin_balances WHERE user_id = $1", user_id
    )
    return coins or 0


async def order_email(pool: Pool, payment: PaymentSuccess) -> tuple[Recipient | None, OrderFacts]:
    """The recipient, and what notify knows of the payment's order and cashback, in one read:
    the coins the payment was credited if that is known, else those the wallet quoted on
    order.placed (which nearly always came before the payment)."""
    row = await pool.fetchrow(
        """
        SELECT r.user_id, r.email, r.first_name, r.locale, r.tier,
               coalesce(o.placed, false) AS order_known, o.estimated_delivery, o.tracking_url,
               coalesce(c.coins, o.coins_quoted) AS coins
        FROM (VALUES (1)) AS one
        LEFT JOIN recipients r ON r.user_id = $1
        LEFT JOIN orders o ON o.order_id = $2
        LEFT JOIN cashback c ON c.payment_id = $3
        """,
        payment.user_id,
        payment.order_id,
        payment.payment_id,
    )
    assert row is not None
    facts = OrderFacts(
        row["order_known"], row["estimated_delivery"], row["tracking_url"], row["coins"]
    )
    return (_recipient(row) if row["user_id"] is not None else None), facts


# -- devices --------------------------------------------------------------------------------


async def register_device(
    pool: Pool, user_id: str, token: str, platform: str, *, may_move: bool
) -> bool:
    """Registers or revives the caller's token; moves another user's to the caller only when
    `may_move` (a fresh sign-in on that install). False: it stays with its owner."""
    registered = await pool.fetchval(
        """
        INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, $3)
        ON CONFLICT (token) DO UPDATE SET
            user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, active = true,
            deactivated_reason = NULL, updated_at = now()
        WHERE devices.user_id = EXCLUDED.user_id OR $4
        RETURNING true
        """,
        token,
        user_id,
        platform,
        may_move,
    )
    return bool(registered)


async def remove_device(pool: Pool, user_id: str, token: str) -> bool:
    deleted = await pool.fetchval(
        "DELETE FROM devices WHERE token = $1 AND user_id = $2 RETURNING true", token, user_id
    )
    return bool(deleted)


# -- the delivery log -----------------------------------------------------------------------

# What the user and the providers allow for this message, read in the claim statement itself so
# a preference changed a moment ago applies to the next message at no extra round trip:
# `suppressed` (why not, if not) and `not_before` (quiet hours: when, if not now).
_VERDICT = """
    verdict AS (
        SELECT
            CASE
                WHEN NOT COALESCE(p.enabled, d.enabled, true)
                    THEN 'preference: ' || $10 || ' ' || $3 || ' is off'
                WHEN s.email IS NOT NULL THEN 'address suppressed: ' || s.reason
            END AS suppressed,
            CASE WHEN d.quiet_hours AND $12::uuid IS NOT NULL
                THEN quiet_hours_end(COALESCE(r.tz, 'Asia/Kolkata'), now())
            END AS not_before
        FROM (VALUES (1)) AS one
        LEFT JOIN category_channels d ON d.category = $10 AND d.channel = $3
        LEFT JOIN preferences p
            ON p.user_id = $4 AND p.category = $10 AND p.channel = $3 AND NOT d.locked
        LEFT JOIN email_suppressions s ON s.email = lower($11)
        LEFT JOIN recipients r ON r.user_id = $4
    )
"""

# Insert the row, or take a queued one whose lease (and quiet hours) ran out: claimed (attempts
# + 1, leased), suppressed (recorded with its reason, never sent), or held back until its
# window opens (queued, no lease, `not_before`). A sent / failed / skipped row is left alone.
_CLAIM_ROW = """
    claimed AS (
        INSERT INTO deliveries
            (source, event_id, channel, user_id, template, title, body, provider, category,
             status, last_error, not_before, attempts, lease_until)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $10,
            CASE WHEN v.suppressed IS NULL THEN 'queued' ELSE 'suppressed' END,
            v.suppressed,
            CASE WHEN v.suppressed IS NULL THEN v.not_before END,
            CASE WHEN v.suppressed IS NULL AND v.not_before IS NULL THEN 1 ELSE 0 END,
            CASE WHEN v.suppressed IS NULL AND v.not_before IS NULL
                THEN now() + make_interval(secs => $9) END
        FROM verdict v
        ON CONFLICT (source, channel, user_id, template) DO UPDATE SET
            status = EXCLUDED.status,
            last_error = COALESCE(EXCLUDED.last_error, deliveries.last_error),
            not_before = EXCLUDED.not_before,
            attempts = deliveries.attempts + EXCLUDED.attempts,
            lease_until = EXCLUDED.lease_until,
            updated_at = now()
        WHERE deliveries.status = 'queued'
          AND (deliveries.lease_until IS NULL OR deliveries.lease_until < now())
          AND (deliveries.not_before IS NULL OR deliveries.not_before <= now())
        RETURNING id, attempts, status, lease_until IS NOT NULL AS held, not_before
    ),
    deferred AS (
        INSERT INTO deferred_events (delivery_id, due_at, event_id, type, subject, payload)
        SELECT c.id, c.not_before, $12, $13, $14, $15 FROM claimed c
        WHERE c.status = 'queued' AND NOT c.held AND $12::uuid IS NOT NULL
        ON CONFLICT (delivery_id) DO UPDATE SET
            due_at = EXCLUDED.due_at, event_id = EXCLUDED.event_id, type = EXCLUDED.type,
            subject = EXCLUDED.subject, payload = EXCLUDED.payload
    )
"""
_CLAIM = f"""
    WITH {_VERDICT}, {_CLAIM_ROW}
    SELECT id, attempts, status, held, not_before FROM claimed
"""  # noqa: S608 - built from our own constants, no input


@dataclass(frozen=True)
class Consent:
    """What the claim checks besides the row: the message's category, the address it goes to
    (email), and the event that sends it again if quiet hours hold it back (None: the message
    cannot wait, e.g. it has no such event; it is then sent at once)."""

    category: str = "transactional"
    address: str | None = None
    later: OutboxRow | None = None


TRANSACTIONAL = Consent()
_NO_LATER = (None, None, None, None)


def _claim_values(
    key: DeliveryKey,
    provider: str,
    lease_seconds: int,
    title: str | None,
    body: str | None,
    consent: Consent,
) -> tuple[object, ...]:
    """The parameters of _CLAIM and _CLAIM_PUSH, $1..$15."""
    return (
        key.source,
        key.event_id,
        key.channel,
        key.user_id,
        key.template,
        title,
        body,
        provider,
        float(lease_seconds),
        consent.category,
        consent.address,
        *(consent.later or _NO_LATER),
    )


def _not_held(row: Any) -> str:
    """The status of a row the claim did not take: suppressed, deferred, or as it was."""
    if row["status"] == "queued" and row["not_before"] is not None:
        return "deferred"
    return str(row["status"])


async def claim(
    conn: Connection,
    key: DeliveryKey,
    *,
    provider: str,
    lease_seconds: int,
    title: str | None = None,
    body: str | None = None,
    consent: Consent = TRANSACTIONAL,
) -> Claim | str:
    """The row, now ours for `lease_seconds`; or the status that keeps us from claiming it
    ("queued" means another worker holds it right now; "suppressed" and "deferred" are what
    this very claim decided)."""
    row = await conn.fetchrow(
        _CLAIM, *_claim_values(key, provider, lease_seconds, title, body, consent)
    )
    if row is None:
        return await _status(conn, key)
    if not row["held"]:
        return _not_held(row)
    return Claim(row["id"], row["attempts"])


@dataclass(frozen=True)
class PushClaim:
    claim: Claim
    tokens: list[str]  # still to send to
    sent_before: int  # tokens that already got this push


# The claim and the snapshot of the user's active tokens into it, in one statement (one round
# trip, atomic without BEGIN/COMMIT). The outer scan's snapshot holds neither the claimed row's
# change nor the CTE's new targets: the targets of an earlier try are found by the claimed id,
# the new ones are added back by the UNION. No row at all: not claimed; a row not held:
# suppressed or deferred.
_CLAIM_PUSH = f"""
    WITH {_VERDICT}, {_CLAIM_ROW},
    added AS (
        INSERT INTO push_targets (delivery_id, token)
        SELECT claimed.id, devices.token FROM claimed, devices
        WHERE claimed.held AND devices.user_id = $4 AND devices.active
        ON CONFLICT DO NOTHING
        RETURNING token
    )
    SELECT c.id, c.attempts, c.status, c.held, c.not_before, t.token, t.status AS target,
           coalesce(d.active, false) AS active
    FROM claimed c
    LEFT JOIN push_targets t ON t.delivery_id = c.id AND c.held
    LEFT JOIN devices d ON d.token = t.token
    UNION ALL
    SELECT c.id, c.attempts, c.status, c.held, c.not_before, a.token, 'pending', true
    FROM claimed c, added a
    ORDER BY 6
"""  # noqa: S608 - built from our own constants, no input


async def claim_push(
    conn: Connection | Pool,
    key: DeliveryKey,
    *,
    provider: str,
    lease_seconds: int,
    title: str | None,
    body: str | None,
    consent: Consent = TRANSACTIONAL,
) -> PushClaim | str:
    """`claim` and `push_targets` at once: the claim with its tokens, or the status that keeps
    us from claiming it."""
    rows = await conn.fetch(
        _CLAIM_PUSH, *_claim_values(key, provider, lease_seconds, title, body, consent)
    )
    if not rows:
        return await _status(conn, key)
    if not rows[0]["held"]:
        return _not_held(rows[0])
    targets = [r for r in rows if r["token"] is not None]
    return PushClaim(
        Claim(rows[0]["id"], rows[0]["attempts"]),
        [r["token"] for r in targets if r["target"] == "pending" and r["active"]],
        sum(1 for r in targets if r["target"] == "sent"),
    )


@dataclass(frozen=True)
class TextClaim:
    claim: Claim
    phone: str | None  # the recipient's number as user.registered gave it; None: none on file


# The claim and the recipient's phone number in one statement, as a push reads its devices: no
# extra round trip, and the number is never copied into the delivery log.
_CLAIM_TEXT = f"""
    WITH {_VERDICT}, {_CLAIM_ROW}
    SELECT c.id, c.attempts, c.status, c.held, c.not_before, rc.phone
    FROM claimed c LEFT JOIN recipients rc ON rc.user_id = $4
"""  # noqa: S608 - built from our own constants, no input


async def claim_text(
    conn: Connection | Pool,
    key: DeliveryKey,
    *,
    provider: str,
    lease_seconds: int,
    title: str | None,
    body: str | None,
    consent: Consent = TRANSACTIONAL,
) -> TextClaim | str:
    """`claim` with the user's phone number (SMS, WhatsApp): the claim and the number, or the
    status that keeps us from claiming it."""
    row = await conn.fetchrow(
        _CLAIM_TEXT, *_claim_values(key, provider, lease_seconds, title, body, consent)
    )
    if row is None:
        return await _status(conn, key)
    if not row["held"]:
        return _not_held(row)
    return TextClaim(Claim(row["id"], row["attempts"]), row["phone"])


async def _status(conn: Connection | Pool, key: DeliveryKey) -> str:
    status: str = await conn.fetchval(
        "SELECT CASE WHEN status = 'queued' AND not_before > now() THEN 'deferred' "
        "ELSE status END FROM deliveries "
        "WHERE source = $1 AND channel = $2 AND user_id = $3 AND template = $4",
        key.source,
        key.channel,
        key.user_id,
        key.template,
    )
    return status


async def release(conn: Connection | Pool, delivery_id: uuid.UUID, error: str | None) -> None:
    """Gives the claim back after a transient failure, so the retry may take it at once."""
    await conn.execute(
        "UPDATE deliveries SET lease_until = NULL, last_error = $2, updated_at = now() "
        "WHERE id = $1",
        delivery_id,
        error,
    )


# The outcome of a claim still held, with its event, in one statement: the UPDATE locks the row
# and checks the claim again once it has the lock, so a claim given back or settled by another
# worker meanwhile is not written over. A webhook may have moved the row past "sent" already;
# its later status is kept.
# The claim settled ($3 its status; NULL only gives it back), if it is still held; `also` sets
# more of the row (its own parameters).
def _held(also: str = "") -> str:
    return f"""
    held AS (
        UPDATE deliveries SET
            status = CASE WHEN status = 'queued' THEN COALESCE($3, status) ELSE status END,
            provider_message_id = COALESCE($4, provider_message_id),
            last_error = $5,
            lease_until = NULL,
            sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,{also}
            updated_at = now()
        WHERE id = $1 AND lease_until IS NOT NULL AND attempts = $2
        RETURNING id
    )
"""  # noqa: S608 - built from our own constants, no input


# An outcome names the provider that took the message ($10): a text message's chain learns it
# only from the one that answered.
_FINISH_HELD = f"""
    WITH {_held(" provider = COALESCE($10::text, provider),")}
    INSERT INTO outbox (event_id, type, subject, payload)
    SELECT $6, $7, $8, $9 FROM held
    RETURNING true
"""  # noqa: S608 - built from our own constant, no input


async def finish_held(
    conn: Connection,
    claim: Claim,
    status: str,
    event: OutboxRow,
    *,
    provider: str | None = None,
    message_id: str | None = None,
    error: str | None = None,
) -> bool:
    """Records the outcome and the event saying so, if `claim` is still the row's live claim;
    whether it was (a retry after a commit whose answer was lost finds it settled and writes
    nothing)."""
    written = await conn.fetchval(
        _FINISH_HELD, claim.id, claim.attempts, status, message_id, error, *event, provider
    )
    return bool(written)


@dataclass(frozen=True)
class PushOutcome:
    """What one try of a push did: its final status (None: some tokens are to be retried, so
    the claim is only given back), its event, and each token's result."""

    status: str | None
    event: OutboxRow | None
    results: Sequence[TokenResult]
    dead: Sequence[TokenResult]
    message_id: str | None
    error: str | None


# The push's outcome in one statement, if the claim is still held: the delivery settled (or
# only given back), its event, each token's result and the dead tokens' devices. Every part
# hangs on `held`, so a retry after a commit whose answer was lost writes nothing twice.
_FINISH_PUSH = f"""
    WITH {_held()},
    event AS (
        INSERT INTO outbox (event_id, type, subject, payload)
        SELECT $6, $7, $8, $9 FROM held WHERE $6::uuid IS NOT NULL
    ),
    targets AS (
        UPDATE push_targets t SET status = r.status, message_id = r.message_id,
            last_error = r.error, updated_at = now()
        FROM held, unnest($10::text[], $11::text[], $12::text[], $13::text[])
            AS r(token, status, message_id, error)
        WHERE t.delivery_id = held.id AND t.token = r.token
    ),
    dead AS (
        UPDATE devices SET active = false, deactivated_reason = d.reason, updated_at = now()
        FROM held, unnest($14::text[], $15::text[]) AS d(token, reason)
        WHERE devices.token = d.token
    )
    SELECT count(*) > 0 FROM held
"""  # noqa: S608 - built from our own constant, no input
_TARGET_STATUS = {"sent": "sent", "dead": "dead", "failed": "failed", "retry": "pending"}


async def finish_push(conn: Connection, claim: Claim, outcome: PushOutcome) -> bool:
    """Records the push's outcome if `claim` is still the row's live claim; whether it was."""
    event = outcome.event or (None, None, None, None)
    results, dead = outcome.results, outcome.dead
    written = await conn.fetchval(
        _FINISH_PUSH,
        claim.id,
        claim.attempts,
        outcome.status,
        outcome.message_id,
        outcome.error,
        *event,
        [r.token for r in results],
        [_TARGET_STATUS[r.outcome] for r in results],
        [r.message_id for r in results],
        [r.error for r in results],
        [r.token for r in dead],
        [r.error or "dead token" for r in dead],
    )
    return bool(written)


async def advance_email(
    pool: Pool,
    *,
    delivery_id: uuid.UUID | None,
    provider_message_id: str | None,
    status: str,
    allowed_from: list[str],
) -> bool:
    """Moves an email forward to `status` (never back); found by our id or SendGrid's."""
    moved = await pool.fetchval(
        """
        UPDATE deliveries SET status = $3, updated_at = now()
        WHERE channel = 'email' AND status = ANY($4::text[])
          AND (id = $1 OR ($1 IS NULL AND provider_message_id = $2))
        RETURNING true
        """,
        delivery_id,
        provider_message_id,
        status,
        allowed_from,
    )
    return bool(moved)


async def notifications(
    pool: Pool, user_id: str, limit: int, before: datetime | None
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        SELECT id, channel, template, title, body, status, provider, attempts, last_error,
               created_at, sent_at
        FROM deliveries
        WHERE user_id = $1 AND ($3::timestamptz IS NULL OR created_at < $3)
        ORDER BY created_at DESC LIMIT $2
        """,
        user_id,
        limit,
        before,
    )
    return [dict(r) for r in rows]


# -- requests and campaigns -----------------------------------------------------------------


async def record_send_request(
    conn: Connection, request_id: str, event_id: uuid.UUID, requested_by: str, users: int
) -> uuid.UUID | None:
    """None when the request id is new; else the event id its first call wrote."""
    fresh = await conn.fetchval(
        """
        INSERT INTO send_requests (request_id, event_id, requested_by, user_count)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true
        """,
        request_id,
        event_id,
        requested_by,
        users,
    )
    if fresh:
        return None
    existing: uuid.UUID = await conn.fetchval(
        "SELECT event_id FROM send_requests WHERE request_id = $1", request_id
    )
    return existing


async def record_campaign(conn: Connection, request_id: str, batches: int, users: int) -> bool:
    fresh = await conn.fetchval(
        "INSERT INTO campaigns (request_id, batches, user_count) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING true",
        request_id,
        batches,
        users,
    )
    return bool(fresh)
