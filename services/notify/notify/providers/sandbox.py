"""Stand-ins used when a provider's credentials are not configured: they record, never send."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from notify.providers import (
    EmailMessage,
    Mode,
    PushMessage,
    TextChannel,
    TextMessage,
    TextReceipt,
    TokenResult,
)
from rtmn_shared.logs import mask_e164

log = logging.getLogger(__name__)


class SandboxEmailSender:
    name = "sandbox"
    mode: Mode = "sandbox"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> str:
        self.sent.append(message)
        message_id = f"sandbox-{uuid.uuid4().hex}"
        log.info(
            "sandbox email: not sent (SENDGRID_API_KEY unset); template %s",
            message.template_id,
            extra={"provider_message_id": message_id},
        )
        return message_id


class SandboxPushSender:
    name = "sandbox"
    mode: Mode = "sandbox"

    def __init__(self) -> None:
        self.sent: list[tuple[PushMessage, list[str]]] = []

    async def send(self, message: PushMessage, tokens: Sequence[str]) -> list[TokenResult]:
        self.sent.append((message, list(tokens)))
        log.info(
            "sandbox push: not sent (FIREBASE_* unset); %d token(s), %r", len(tokens), message.title
        )
        return [TokenResult(t, "sent", message_id=f"sandbox-{uuid.uuid4().hex}") for t in tokens]


class SandboxTextSender:
    name = "sandbox"
    mode: Mode = "sandbox"
    channels: frozenset[TextChannel] = frozenset({"sms", "whatsapp"})

    def __init__(self) -> None:
        self.sent: list[TextMessage] = []

    async def send(self, message: TextMessage) -> TextReceipt:
        self.sent.append(message)
        log.info(
            "sandbox %s to %s: not sent (MSG91_AUTH_KEY and TWILIO_* unset)",
            message.channel,
            mask_e164(message.to),
        )
        return TextReceipt(self.name, f"sandbox-{uuid.uuid4().hex}")
