"""Daily partitions of the inbox: made ahead, filled from the default after days without upkeep,
dropped past the window, never waited on for long; and the migration of an inbox with rows."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from rtmn_shared.dedupe import DedupeWindow
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.inbox import Inbox
from rtmn_shared.events.outcomes import GiveUp
from rtmn_shared.migrations import discover, migrate
from rtmn_shared.partitions import keep_partitions, partition_name, partitions_of
from rtmn_shared.suite import ServiceInfo
from rtmn_shared.testing.infra import Suite, provision_for_tests

DAYS = ServiceInfo("days", 0)
MIGRATIONS = Path(__file__).parent / "demo_migrations"
WINDOW = DedupeWindow(7)
TODAY = date(2031, 3, 10)
DAY = timedelta(days=1)
CONSUMER = "days.handler"

Conn = asyncpg.Connection  # type: ignore[type-arg]


@pytest.fixture(scope="session")
async def days_role(suite: Suite) -> None:
    await provision_for_tests(suite.database, [DAYS])


@pytest.fixture
async def conn(
    days_role: None,
    suite: Suite,
    admin: Conn,
) -> AsyncIterator[Conn]:
    """A session in an empty schema `days`, made anew for each test."""
    await admin.execute("DROP SCHEMA IF EXISTS days CASCADE")
    await admin.execute("CREATE SCHEMA days AUTHORIZATION rtmn_days")
    session = await asyncpg.connect(
        suite.database_url, user=DAYS.role, server_settings={"search_path": DAYS.schema}
    )
    yield session
    await session.close()


async def migrated(conn: Conn, *, leaving_out: str | None = None) -> None:
    found = [m for m in discover(MIGRATIONS) if m.name != leaving_out]
    await migrate(conn, DAYS.schema, found)


def at(day: date, clock: time = time(12)) -> datetime:
    return datetime.combine(day, clock, UTC)


def inbox_at(now: datetime) -> Inbox:
    return Inbox(WINDOW, clock=lambda: now)


def event(moment: datetime, event_id: uuid.UUID | None = None) -> CloudEvent:
    data = {"payment_id": "pay_1", "order_id": "o", "order_number": "R1", "user_id": "u",
            "merchant_id": "m", "amount": 100, "currency": "INR", "gateway": "razorpay",
            "gateway_payment_id": "p", "paid_at": moment.isoformat()}  # fmt: skip
    return CloudEvent(
        id=event_id or uuid.uuid4(),
        source="rtmn/days",
        type=PaymentSuccess.type,
        time=moment,
        data=data,
    )


async def where(conn: Conn, seen: CloudEvent) -> list[str]:
    """The partitions holding the event's inbox rows."""
    sql = "SELECT tableoid::regclass::text FROM inbox WHERE event_id = $1"
    return [r[0] for r in await conn.fetch(sql, seen.id)]


def names(first: date, count: int) -> list[str]:
    return [partition_name("inbox", first + n * DAY) for n in range(count)]


async def test_today_and_three_days_ahead_get_partitions_so_midnight_needs_no_ddl(
    conn: Conn,
) -> None:
    await migrated(conn)

    kept = await keep_partitions(conn, WINDOW, today=TODAY)

    assert kept.created == names(TODAY, 4)
    assert (await keep_partitions(conn, WINDOW, today=TODAY)).created == []  # idempotent
    # Midnight passes with no upkeep: each side of it lands in its own day, and a redelivery
    # after midnight of an event from before it meets its row.
    inbox = inbox_at(at(TODAY + DAY, time(0, 0, 1)))
    before = event(at(TODAY, time(23, 59, 59, 999_999)))
    after = event(at(TODAY + DAY, time(0)))
    assert await inbox.record(conn, CONSUMER, before)
    assert await inbox.record(conn, CONSUMER, after)
    assert not await inbox.record(conn, CONSUMER, before)
    assert await where(conn, before) == [partition_name("inbox", TODAY)]
    assert await where(conn, after) == [partition_name("inbox", TODAY + DAY)]


async def test_days_past_the_window_are_dropped_and_their_events_refused(conn: Conn) -> None:
    await migrated(conn)
    await keep_partitions(conn, WINDOW, today=TODAY)
    inbox = inbox_at(at(TODAY))
    old_day, kept_day = event(at(TODAY)), event(at(TODAY + DAY))
    caught = event(at(TODAY - 2 * DAY))  # no partition for that day: the default holds it
    for seen in (old_day, kept_day, caught):
        assert await inbox.record(conn, CONSUMER, seen)
    assert await where(conn, caught) == ["inbox_default"]

    later = TODAY + (WINDOW.days + 2) * DAY
    kept = await keep_partitions(conn, WINDOW, today=later)

    assert kept.dropped == [partition_name("inbox", TODAY)]
    assert kept.purged == 1
    assert await where(conn, old_day) == []
    # One day more is kept than accepted: a clock a little behind another's never loses a row.
    assert await where(conn, kept_day) == [partition_name("inbox", TODAY + DAY)]
    for seen in (old_day, kept_day):
        with pytest.raises(GiveUp, match="past the dedupe window"):
            await inbox_at(at(later)).record(conn, CONSUMER, seen)


async def test_after_days_without_upkeep_the_default_hands_its_rows_to_their_new_day(
    conn: Conn,
) -> None:
    await migrated(conn)
    await keep_partitions(conn, WINDOW, today=TODAY)
    back = TODAY + 6 * DAY  # nothing kept the partitions since TODAY
    inbox = inbox_at(at(back))
    seen = event(at(back))
    assert await inbox.record(conn, CONSUMER, seen)
    assert await where(conn, seen) == ["inbox_default"]

    kept = await keep_partitions(conn, WINDOW, today=back)

    assert kept.created == names(back, 4)
    assert await where(conn, seen) == [partition_name("inbox", back)]
    assert not await inbox.record(conn, CONSUMER, seen)
    assert await conn.fetchval("SELECT count(*) FROM inbox_default") == 0


async def test_upkeep_waits_for_writers_only_briefly_and_finishes_next_time(
    conn: Conn, suite: Suite
) -> None:
    await migrated(conn)
    await keep_partitions(conn, WINDOW, today=TODAY)
    later = TODAY + (WINDOW.days + 2) * DAY
    writer = await asyncpg.connect(
        suite.database_url, user=DAYS.role, server_settings={"search_path": DAYS.schema}
    )
    try:
        async with writer.transaction():  # a consumer's transaction that will not end soon
            await inbox_at(at(TODAY)).record(writer, CONSUMER, event(at(TODAY + 2 * DAY)))

            kept = await keep_partitions(conn, WINDOW, today=later)

            assert kept.dropped == []
            ranged, _ = await partitions_of(conn, "inbox")
            assert partition_name("inbox", TODAY) in [p.name for p in ranged]
    finally:
        await writer.close()
    kept = await keep_partitions(conn, WINDOW, today=later)
    assert kept.dropped == [partition_name("inbox", TODAY)]


async def test_the_migration_keeps_the_inbox_rows_it_found_deduplicated(conn: Conn) -> None:
    await migrated(conn, leaving_out="shared/0004_inbox_by_day.sql")
    ages = [timedelta(0), 2 * DAY, 6 * DAY]
    applied = [uuid.uuid4() for _ in ages]
    await conn.executemany(
        "INSERT INTO inbox (consumer, event_id, processed_at) "
        "VALUES ($1, $2, now() - $3::interval)",
        [(CONSUMER, event_id, age) for event_id, age in zip(applied, ages, strict=True)],
    )

    await migrated(conn)

    now = datetime.now(UTC)
    today = now.date()
    inbox = inbox_at(now)
    for event_id, age in zip(applied, ages, strict=True):
        assert not await inbox.record(conn, CONSUMER, event(now - age, event_id))
    assert await inbox.record(conn, CONSUMER, event(now))
    ranged, default = await partitions_of(conn, "inbox")
    assert default == "inbox_default"
    [legacy] = ranged
    assert (legacy.name, legacy.start, legacy.end) == ("inbox_legacy", None, today + 2 * DAY)
    # Upkeep makes the days after those it covers, and drops it once they are all past.
    assert (await keep_partitions(conn, WINDOW, today=today)).created == names(today + 2 * DAY, 2)
    gone = today + (WINDOW.days + 3) * DAY
    assert "inbox_legacy" in (await keep_partitions(conn, WINDOW, today=gone)).dropped


async def test_an_empty_inbox_becomes_partitioned_with_nothing_left_over(conn: Conn) -> None:
    await migrated(conn)

    assert await partitions_of(conn, "inbox") == ([], "inbox_default")
    assert await conn.fetchval("SELECT to_regclass('inbox_legacy')") is None


async def test_the_runtime_role_leaves_days_to_the_owner_and_only_purges_expired_rows(
    conn: Conn, admin: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    await migrated(conn)
    await keep_partitions(conn, WINDOW, today=TODAY)
    caught = event(at(TODAY - 2 * DAY))  # in the default: no partition for that day
    assert await inbox_at(at(TODAY)).record(conn, CONSUMER, caught)
    # The split as provision.py makes it: the owner holds the tables, `conn` only their rows.
    await admin.execute(f"REASSIGN OWNED BY {DAYS.role} TO {DAYS.owner}")
    await admin.execute(f"GRANT USAGE ON SCHEMA days TO {DAYS.role}")
    await admin.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA days TO {DAYS.role}"
    )

    later = TODAY + (WINDOW.days + 2) * DAY
    kept = await keep_partitions(conn, WINDOW, today=later)

    assert (kept.created, kept.dropped, kept.purged) == ([], [], 1)  # rows only
    assert await where(conn, caught) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert partition_name("inbox", TODAY) in {
        p.name for p in (await partitions_of(conn, "inbox"))[0]
    }
