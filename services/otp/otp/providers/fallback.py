"""Providers in order of preference: the next one is tried only when the last was unavailable."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from otp.providers import Channel, ProviderUnavailable, Receipt, Sms, SmsSender

log = logging.getLogger(__name__)


class FallbackSender:
    def __init__(self, senders: Sequence[SmsSender]) -> None:
        if not senders:
            raise ValueError("at least one SMS sender is needed")
        self.senders = list(senders)
        self.name = "+".join(s.name for s in senders)
        self.channels: frozenset[Channel] = frozenset().union(*(s.channels for s in senders))

    async def send(self, sms: Sms) -> Receipt:
        """Raises the last `ProviderUnavailable` when all are down; `RecipientRejected` at once."""
        failure = ProviderUnavailable(self.name, f"no provider offers {sms.channel}")
        for sender in self.senders:
            if sms.channel not in sender.channels:
                continue
            try:
                return await sender.send(sms)
            except ProviderUnavailable as error:
                log.warning("SMS provider unavailable: %s", error, extra={"provider": sender.name})
                failure = error
        raise failure
