"""SMS and WhatsApp providers in order of preference (MSG91, then Twilio), as the OTP service
chains them: the next one is tried only when the last was unavailable (timeout, 5xx, 429, a
refusal of our account); a number refused as such stops the chain at once."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from notify.providers import (
    Mode,
    TextChannel,
    TextMessage,
    TextReceipt,
    TextSender,
    TransientSendError,
)

log = logging.getLogger(__name__)


class FallbackTextSender:
    def __init__(self, senders: Sequence[TextSender]) -> None:
        if not senders:
            raise ValueError("at least one text sender is needed")
        self.senders = list(senders)
        self.name = "+".join(s.name for s in senders)
        self.mode: Mode = "live" if any(s.mode == "live" for s in senders) else "sandbox"
        self.channels: frozenset[TextChannel] = frozenset().union(*(s.channels for s in senders))

    async def send(self, message: TextMessage) -> TextReceipt:
        """The first provider's receipt that took it; the last TransientSendError when all are
        down; PermanentSendError at once."""
        failure = TransientSendError(f"{self.name}: no provider offers {message.channel}")
        for sender in self.senders:
            if message.channel not in sender.channels:
                continue
            try:
                return await sender.send(message)
            except TransientSendError as error:
                log.warning(
                    "%s provider unavailable: %s",
                    message.channel,
                    error,
                    extra={"provider": sender.name},
                )
                failure = error
        raise failure
