"""What every provider's webhooks share: the secrets' rotation window, the commands a payload
becomes, the body's cap, and readers of its fields.

Each provider verifies and parses its own (`providers/razorpay/webhooks.py`,
`providers/stripe/webhooks.py`); no I/O there or here: the endpoint verifies, parses, and hands
a `Command` to `inbound.handle`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from payments.disputes import DisputeCommand
from payments.domain import Signal

# A webhook body's cap, as nginx's client_max_body_size for the webhook locations (1m).
MAX_BODY_BYTES = 1024 * 1024

_CURRENCY = re.compile(r"[A-Z]{3}")


class BadWebhook(Exception):
    """Signature, header or body not acceptable: a 400, and nothing changes."""


@dataclass(frozen=True)
class Secrets:
    """The current webhook secret and, until `previous_until`, the one it replaced.

    One rotation window for every provider: no date, or a date passed, refuses the previous one.
    """

    current: bytes | None
    previous: bytes | None = None
    previous_until: datetime | None = None

    @classmethod
    def of(
        cls,
        current: SecretStr | None,
        previous: SecretStr | None = None,
        previous_until: datetime | None = None,
    ) -> Secrets:
        return cls(_bytes(current), _bytes(previous), previous_until)

    def valid(self, now: datetime) -> list[bytes]:
        found = [self.current] if self.current else []
        if self.previous and self.previous_until is not None and now < self.previous_until:
            found.append(self.previous)
        return found


def _bytes(secret: SecretStr | None) -> bytes | None:
    return secret.get_secret_value().encode() if secret else None


@dataclass(frozen=True)
class PaymentCommand:
    gateway_order_id: str
    signal: Signal


@dataclass(frozen=True)
class RefundCommand:
    gateway_refund_id: str
    refund_id: str | None  # ours, from the notes/metadata we sent with the refund
    processed: bool


@dataclass(frozen=True)
class Ignored:
    reason: str


Command = PaymentCommand | RefundCommand | DisputeCommand | Ignored


# -- reading a payload's fields (a TypeError or ValueError: the body is malformed) -------------


def refuse_nul(body: bytes) -> None:
    if b"\\u0000" in body:
        raise BadWebhook("the webhook body carries a NUL character")


def timestamp(value: Any) -> datetime:
    """A provider's Unix time in seconds; bool is an int to Python but not to a provider."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("time")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError):
        raise ValueError("time") from None


def optional_time(value: Any) -> datetime | None:
    return None if value is None else timestamp(value)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("text field")
    return value


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def amount(value: Any) -> int:
    """Minor units, as both providers send them."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("amount")
    return value


def currency(value: Any) -> str:
    found = text(value).upper()
    if not _CURRENCY.fullmatch(found):
        raise ValueError("currency")
    return found
