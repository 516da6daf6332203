"""Consent's SQL: preferences, time zones, suppressed addresses, and deferred sends coming due."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtmn_shared.db import Connection, Pool


@dataclass(frozen=True)
class Preference:
    category: str
    channel: str
    enabled: bool
    locked: bool
    default: bool


async def preferences(pool: Pool, user_id: str) -> tuple[str | None, list[Preference]]:
    """The user's time zone (None: the default) and every category and channel, as it applies."""
    rows = await pool.fetch(
        """
        SELECT d.category, d.channel, d.locked, d.enabled AS default,
               CASE WHEN d.locked THEN d.enabled ELSE COALESCE(p.enabled, d.enabled) END
                   AS enabled,
               (SELECT tz FROM recipients WHERE user_id = $1) AS tz
        FROM category_channels d
        LEFT JOIN preferences p
            ON p.user_id = $1 AND p.category = d.category AND p.channel = d.channel
        ORDER BY d.category, d.channel
        """,
        user_id,
    )
    tz = rows[0]["tz"] if rows else None
    return tz, [
        Preference(r["category"], r["channel"], r["enabled"], r["locked"], r["default"])
        for r in rows
    ]


async def locked(pool: Pool) -> set[tuple[str, str]]:
    rows = await pool.fetch("SELECT category, channel FROM category_channels WHERE locked")
    return {(r["category"], r["channel"]) for r in rows}


async def set_preferences(
    conn: Connection,
    user_id: str,
    changes: Sequence[tuple[str, str, bool]],
    *,
    source: str,
) -> None:
    """(category, channel, enabled) for each; a locked pair is never written."""
    await conn.execute(
        """
        INSERT INTO preferences (user_id, category, channel, enabled, source)
        SELECT $1, c.category, c.channel, c.enabled, $5
        FROM unnest($2::text[], $3::text[], $4::bool[]) AS c(category, channel, enabled)
        JOIN category_channels d USING (category, channel)
        WHERE NOT d.locked
        ON CONFLICT (user_id, category, channel) DO UPDATE SET
            enabled = EXCLUDED.enabled, source = EXCLUDED.source, updated_at = now()
        """,
        user_id,
        [c[0] for c in changes],
        [c[1] for c in changes],
        [c[2] for c in changes],
        source,
    )


async def set_time_zone(conn: Connection, user_id: str, tz: str) -> None:
    # The recipient may not be known yet (user.registered still on its way): its row starts
    # here with the oldest possible as_of, so the event still fills in the rest.
    await conn.execute(
        """
        INSERT INTO recipients (user_id, tz, as_of) VALUES ($1, $2, '-infinity')
        ON CONFLICT (user_id) DO UPDATE SET tz = EXCLUDED.tz, updated_at = now()
        """,
        user_id,
        tz,
    )


async def email_off_for_delivery(
    pool: Pool, delivery_id: object, provider_message_id: str | None, source: str
) -> bool:
    """Turns email off for the category of the delivery a SendGrid event is about (an
    unsubscribe or a spam report); a locked category (transactional) stays on."""
    done = await pool.fetchval(
        """
        INSERT INTO preferences (user_id, category, channel, enabled, source)
        SELECT x.user_id, x.category, 'email', false, $3
        FROM deliveries x JOIN category_channels d
            ON d.category = x.category AND d.channel = 'email' AND NOT d.locked
        WHERE x.channel = 'email'
          AND (x.id = $1 OR ($1 IS NULL AND x.provider_message_id = $2))
        LIMIT 1
        ON CONFLICT (user_id, category, channel) DO UPDATE SET
            enabled = false, source = EXCLUDED.source, updated_at = now()
        RETURNING true
        """,
        delivery_id,
        provider_message_id,
        source,
    )
    return bool(done)


async def suppress_address(pool: Pool, email: str, reason: str) -> None:
    await pool.execute(
        "INSERT INTO email_suppressions (email, reason) VALUES (lower($1), $2) "
        "ON CONFLICT (email) DO NOTHING",
        email,
        reason,
    )


async def release_due(pool: Pool) -> int:
    """Moves the sends held back by quiet hours whose window has opened into the outbox."""
    moved: int = await pool.fetchval(
        """
        WITH due AS (
            DELETE FROM deferred_events WHERE due_at <= now()
            RETURNING event_id, type, subject, payload
        ),
        queued AS (
            INSERT INTO outbox (event_id, type, subject, payload)
            SELECT event_id, type, subject, payload FROM due
            ON CONFLICT (event_id) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM queued
        """
    )
    return moved
