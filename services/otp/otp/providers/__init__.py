"""Sending the code by SMS: one `SmsSender` interface, a provider per module, a fallback chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from otp.domain import Phone


@dataclass(frozen=True)
class Sms:
    phone: Phone
    code: str
    body: str

    def __repr__(self) -> str:
        return f"Sms(to={self.phone!r})"  # never the code


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


class SmsSender(Protocol):
    name: str

    async def send(self, sms: Sms) -> Receipt:
        """Hands the message over to the provider. Raises `SmsFailed`."""
        ...
