"""The consumers' inbox: which events each consumer group applied, inside the dedupe window.

A row (consumer, event_id, day) commits with the handler's effect; `day` is the UTC date of the
event's own `time`, identical on every redelivery, so a redelivery meets its row in the same
daily partition (shared migration 0004, rtmn_shared/partitions.py). An event older than the
window may have lost its row with its partition: it is refused (GiveUp, so dead-lettered with
the reason) rather than risk applying it twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rtmn_shared.db import Connection
from rtmn_shared.dedupe import DEFAULT_WINDOW, DedupeWindow, day_of
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outcomes import GiveUp
from rtmn_shared.settings import SettingsError

# The least time an operator has to replay a dead letter once its retries are over.
REPLAY_ALLOWANCE = timedelta(days=1)
REPLAY_ALLOWANCE_TEXT = "a day"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Inbox:
    window: DedupeWindow = DEFAULT_WINDOW
    clock: Callable[[], datetime] = field(default=_now, compare=False)

    async def record(self, conn: Connection, consumer: str, event: CloudEvent) -> bool:
        """False when the consumer applied this event before; GiveUp when that is unknowable."""
        self.refuse_if_unknowable(event)
        fresh = await conn.fetchval(
            "INSERT INTO inbox (consumer, event_id, day) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            consumer,
            event.id,
            day_of(event.time),
        )
        return bool(fresh)

    async def record_batch(
        self, conn: Connection, consumer: str, events: Sequence[CloudEvent]
    ) -> set[uuid.UUID]:
        """The ids applied for the first time, in one statement; GiveUp if any is unknowable."""
        for event in events:
            self.refuse_if_unknowable(event)
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, event_id, day) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::date[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            consumer,
            [event.id for event in events],
            [day_of(event.time) for event in events],
        )
        return {row["event_id"] for row in rows}

    def refuse_if_unknowable(self, event: CloudEvent) -> None:
        if "time" not in event.model_fields_set:
            # Without its own time an event's day would change between redeliveries.
            raise GiveUp("the event has no time: it cannot be deduplicated")
        if not self.window.accepts(event.time, self.clock()):
            raise GiveUp(self.window.refusal(event.time))


DEFAULT_INBOX = Inbox()


def check_window(window: DedupeWindow, retry_delays_ms: Mapping[str, Sequence[int]]) -> None:
    """Start-up: every inbox consumer's retries end, with a day to spare for a replay from its
    dead-letter queue, inside the window; a redelivery later than that would be refused."""
    for name, delays in retry_delays_ms.items():
        retrying = timedelta(milliseconds=sum(delays))
        if retrying + REPLAY_ALLOWANCE > window.span:
            raise SettingsError(
                f"configuration error: DEDUPE_WINDOW_DAYS={window.days} is too short for "
                f"{name}: its retries last {retrying.total_seconds() / 60:.0f} min, and its "
                f"dead letters need {REPLAY_ALLOWANCE_TEXT} more to be replayed"
            )
