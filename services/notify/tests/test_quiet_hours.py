"""Quiet hours: a promotional message outside 09:00-21:00 in the user's zone waits for the next
window (held, not dropped) and then goes once; a transactional one goes at once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from notify_testkit import (
    Publish,
    add_devices,
    consumed,
    delivery,
    live_in,
    payment,
    status_is,
    unique,
    zone_at_hour,
)

from rtmn_fakes.fcm import FcmFake
from rtmn_shared.events.catalogue import NotificationRequested
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for

KOLKATA = ZoneInfo("Asia/Kolkata")


async def test_quiet_hours_end_at_the_next_nine_oclock_in_the_users_zone(
    notify: RunningService,
) -> None:
    async def end(local: datetime, tz: str = "Asia/Kolkata") -> datetime | None:
        found: datetime | None = await notify.pool.fetchval(
            "SELECT quiet_hours_end($1, $2)", tz, local
        )
        return found

    def ist(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=KOLKATA)

    assert await end(ist(4, 9)) is None
    assert await end(ist(4, 20, 59)) is None
    assert await end(ist(4, 21)) == ist(5, 9)
    assert await end(ist(4, 23, 30)) == ist(5, 9)
    assert await end(ist(5, 3)) == ist(5, 9)
    assert await end(ist(5, 8, 59)) == ist(5, 9)
    # 02:00 in London is 07:30 in Kolkata: quiet there, by London's clock.
    london = datetime(2026, 12, 5, 2, tzinfo=ZoneInfo("Europe/London"))
    assert await end(london, "Europe/London") == datetime(
        2026, 12, 5, 9, tzinfo=ZoneInfo("Europe/London")
    )


async def test_a_promotional_push_at_3am_waits_for_9am_then_goes_once(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user_id, token = unique("user"), unique("tok")
    await add_devices(pool, user_id, token)
    tz = zone_at_hour(3)
    await live_in(pool, user_id, tz)
    sale = NotificationRequested(
        request_id=unique("sale"),
        user_ids=[user_id],
        title="Midnight sale",
        message="50% off",
        data={"type": "promotion"},
    )

    before = consumed("notify.send-requested")
    await publish(sale)
    held = await wait_for(
        lambda: pool.fetchrow(
            "SELECT * FROM deliveries WHERE user_id = $1 AND not_before IS NOT NULL", user_id
        ),
        message="the push held back",
    )
    await publish(sale)  # the same request again while it waits: still one held message
    await wait_for(
        lambda: consumed("notify.send-requested") >= before + 2, message="both copies consumed"
    )
    local = datetime.now(UTC).astimezone(ZoneInfo(tz))
    nine = local.replace(hour=9, minute=0, second=0, microsecond=0)

    assert (held["status"], held["attempts"], held["lease_until"]) == ("queued", 0, None)
    assert held["not_before"] == nine
    assert fcm.deliveries_to(token) == []
    waiting = await pool.fetch(
        "SELECT due_at, type FROM deferred_events WHERE delivery_id = $1", held["id"]
    )
    assert [(w["due_at"], w["type"]) for w in waiting] == [(nine, "notify.campaign-batch")]

    # 09:00 comes: the user now lives where it is daytime, and the held send comes due.
    await live_in(pool, user_id, zone_at_hour(14))
    await pool.execute("UPDATE deliveries SET not_before = now() WHERE id = $1; ", held["id"])
    await pool.execute(
        "UPDATE deferred_events SET due_at = now() WHERE delivery_id = $1", held["id"]
    )
    await wait_for(lambda: status_is(pool, user_id, "request", "sent"), message="the push")

    assert len(fcm.deliveries_to(token)) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM deferred_events WHERE delivery_id = $1", held["id"]
        )
        == 0
    )


async def test_a_transactional_push_at_3am_goes_at_once(
    notify: RunningService, publish: Publish, fcm: FcmFake
) -> None:
    pool = notify.pool
    user_id, token = unique("user"), unique("tok")
    await add_devices(pool, user_id, token)
    await live_in(pool, user_id, zone_at_hour(3))

    await publish(payment(user_id))
    await wait_for(
        lambda: status_is(pool, user_id, "payment-success", "sent"), message="payment push"
    )

    row = await delivery(pool, user_id, "payment-success")
    assert row is not None
    assert row["not_before"] is None
    assert len(fcm.deliveries_to(token)) == 1
