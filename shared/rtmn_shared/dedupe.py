"""The dedupe window: how long an event is remembered, counted in UTC days of its own time.

An event's day is the UTC date of the time its producer gave it (a CloudEvent's `time`, a
provider's `created_at`), the same on every redelivery. A dedupe record lives in that day's
partition, which is kept while the day is inside the window: an event is recognised as seen for
at least `days` × 24 h after its own time. One older than that can no longer be recognised, so
it is refused, never applied a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

ONE_DAY = timedelta(days=1)


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@dataclass(frozen=True)
class DedupeWindow:
    days: int = 7

    @property
    def span(self) -> timedelta:
        """How long after its own time an event is surely still recognised."""
        return self.days * ONE_DAY

    def first_day(self, now: datetime) -> date:
        """The oldest day whose events are still accepted."""
        return day_of(now) - self.span

    def accepts(self, moment: datetime, now: datetime) -> bool:
        return day_of(moment) >= self.first_day(now)

    def kept_from(self, today: date) -> date:
        """The oldest day whose records are kept: one day before the first accepted, so that a
        clock a little ahead of another's never drops what the other still accepts."""
        return today - self.span - ONE_DAY

    def refusal(self, moment: datetime) -> str:
        return (
            f"past the dedupe window: its time {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC is more "
            f"than {self.days} days ago, and whether it was applied is no longer known"
        )


DEFAULT_WINDOW = DedupeWindow()
