"""What notify needs from an email, push, SMS or WhatsApp provider, and how a provider says it
failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rtmn_shared.logs import mask_e164

Mode = Literal["live", "sandbox"]


class TransientSendError(Exception):
    """Timeouts, 429, 5xx: the same send may succeed later."""


class PermanentSendError(Exception):
    """The provider refused the message itself (invalid address, bad template): never retry."""


class OptedOut(PermanentSendError):
    """The recipient told the provider to stop (an SMS STOP to our sender): the message is
    suppressed, as a preference turned off would be, never retried or routed around."""


@dataclass(frozen=True)
class EmailMessage:
    to: str
    template_id: str
    data: Mapping[str, str]
    # Strings only; they come back in SendGrid's event webhook, tying events to our rows.
    custom_args: Mapping[str, str] = field(default_factory=dict)
    # Mail headers, e.g. RFC 8058's List-Unsubscribe and List-Unsubscribe-Post.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    data: Mapping[str, str]
    image: str | None = None


# sent: delivered to FCM; dead: the token will never work again (deactivate it);
# retry: a quota or availability error, try this token later; failed: the message was refused.
TokenOutcome = Literal["sent", "dead", "retry", "failed"]


@dataclass(frozen=True)
class TokenResult:
    token: str
    outcome: TokenOutcome
    message_id: str | None = None
    error: str | None = None


# Text channels: SMS, and WhatsApp (an approved template whose one variable is the text).
TextChannel = Literal["sms", "whatsapp"]


@dataclass(frozen=True)
class TextMessage:
    to: str  # E.164, e.g. +919876543210
    text: str
    channel: TextChannel = "sms"

    def __repr__(self) -> str:
        return f"TextMessage(to={mask_e164(self.to)}, {self.channel})"  # never the full number


@dataclass(frozen=True)
class TextReceipt:
    provider: str  # the one that took it, of a fallback chain
    message_id: str


class EmailSender(Protocol):
    name: str
    mode: Mode

    async def send(self, message: EmailMessage) -> str:
        """Returns the provider's message id; raises TransientSendError or PermanentSendError."""
        ...


class PushSender(Protocol):
    name: str
    mode: Mode

    async def send(self, message: PushMessage, tokens: Sequence[str]) -> list[TokenResult]:
        """One result per token, in order; raises TransientSendError if nothing could be tried."""
        ...


class TextSender(Protocol):
    name: str
    mode: Mode
    channels: frozenset[TextChannel]

    async def send(self, message: TextMessage) -> TextReceipt:
        """Hands the message over; raises TransientSendError (another provider, or a later try,
        may take it) or PermanentSendError (the number itself is refused: no one should try)."""
        ...
