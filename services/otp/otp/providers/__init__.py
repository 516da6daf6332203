"""Sending the code: one `SmsSender` interface (SMS, WhatsApp or a voice call), a provider per
module, a fallback chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from otp.domain import Phone

Channel = Literal["sms", "whatsapp", "voice"]
# What a delivery receipt says of a send, in our words.
Outcome = Literal["delivered", "failed", "pending"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


@dataclass(frozen=True)
class Sms:
    """One code on its way to a phone; `body` is the SMS text, `channel` says how it travels."""

    phone: Phone
    code: str
    body: str
    channel: Channel = "sms"

    def __repr__(self) -> str:
        return f"Sms(to={self.phone!r}, {self.channel})"  # never the code


class SmsFailed(Exception):
    """The provider did not take the message. Messages name the provider and status only."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider, self.reason = provider, reason


class ProviderUnavailable(SmsFailed):
    """Timeout, connection failure, 5xx, 429, or a refusal of our account: another provider may."""


class RecipientRejected(SmsFailed):
    """The provider refuses this number (not a mobile, unsubscribed...): no provider should try."""


@dataclass(frozen=True)
class Receipt:
    provider: str
    message_id: str


@dataclass(frozen=True)
class DeliveryReport:
    """One provider receipt read once: the send it is about, the provider's status, ours."""

    message_id: str
    status: str  # the provider's word, for the log line and metrics
    outcome: Outcome


class BadReport(Exception):
    """A receipt we must refuse: `status` (400 or 403) and a detail safe to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class SmsSender(Protocol):
    name: str
    channels: frozenset[Channel]

    async def send(self, sms: Sms) -> Receipt:
        """Hands the message over to the provider. Raises `SmsFailed`."""
        ...
