"""Who published a delivery, as the broker vouches for it, and whether the catalogue lets them.

Every publish carries the AMQP `user_id` of its own login, which RabbitMQ checks against the
connection's user (a mismatch closes the channel), so a consumer knows the publisher for sure.
Each principal logs in as `<prefix><name>` (`rtmn_payments`); the catalogue names the producers
of each type, and a consumer refuses an event whose publisher is not among them.

Re-publishes cannot keep the original `user_id`: a consumer moving a delivery to its retry
queue or DLQ, the operator's `rtmn-dlq replay` and analytics' retired-queue fold publish under
their own login and carry the first-hand publisher in PRODUCER_HEADER. That header is believed
only when the validated publisher is the consuming group's own login or the operator's, who
could have done anything with the delivery anyway; from anyone else it is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PRODUCER_HEADER = "x-rtmn-producer"
OPERATOR = "ops"  # the login of the operator's tools (rtmn-dlq)
DEFAULT_PREFIX = "rtmn_"


@dataclass(frozen=True)
class Logins:
    """The broker and Redis user of each principal: `<prefix><name>`."""

    prefix: str = DEFAULT_PREFIX

    def of(self, name: str) -> str:
        return f"{self.prefix}{name}"


def login_of(url: str) -> str | None:
    """The user a broker URL logs in as."""
    user = urlsplit(url.partition(",")[0]).username  # every address logs in as the first
    return unquote(user) if user else None


def first_hand(
    user_id: str | None, headers: Mapping[str, object], relaying: frozenset[str]
) -> str | None:
    """Who first published a delivery: the validated publisher, or, when that is one of the
    `relaying` logins and the delivery names a producer (a re-publish), the producer named."""
    if user_id in relaying:
        named = headers.get(PRODUCER_HEADER)
        if isinstance(named, bytes):
            return named.decode()
        if isinstance(named, str):
            return named
    return user_id


def relaying_logins(logins: Logins, *own: str | None) -> frozenset[str]:
    """The logins whose re-publishes are believed: `own` and the operator's."""
    return frozenset(u for u in (*own, logins.of(OPERATOR)) if u is not None)


class Publishers:
    """The check a consumer group runs on each delivery: one set lookup for a first-hand one."""

    def __init__(
        self, logins: Logins, own_login: str | None, producers: Mapping[str, tuple[str, ...]]
    ) -> None:
        self._allowed = frozenset(
            (type_, logins.of(name)) for type_, names in producers.items() for name in names
        )
        self._relaying = relaying_logins(logins, own_login)

    def producer(self, user_id: str | None, headers: Mapping[str, object]) -> str | None:
        return first_hand(user_id, headers, self._relaying)

    def refusal(self, type_: str, user_id: str | None, headers: Mapping[str, object]) -> str | None:
        """Why the delivery is refused, or None when its producer may publish `type_`."""
        if (type_, user_id) in self._allowed:
            return None
        producer = self.producer(user_id, headers)
        if producer is not None and (type_, producer) in self._allowed:
            return None
        return (
            f"{type_} published by {producer or 'an unnamed publisher'}, not one of its producers"
        )


class AnyPublisher(Publishers):
    """No check: for harnesses of the consumer's own mechanics (retries, acks, batches) only."""

    def __init__(self) -> None:
        super().__init__(Logins(), None, {})

    def refusal(self, type_: str, user_id: str | None, headers: Mapping[str, object]) -> str | None:
        return None
