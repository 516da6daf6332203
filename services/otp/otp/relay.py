"""Fallback on silence: when a provider reports that a code never arrived, the next provider or
channel of the plan carries the same code, while it is still live.

The plan is every (provider, channel) pair in channel order (SMS, WhatsApp, voice), providers in
their order of preference. A code goes at most once through each step, and a resend is no new
send: the caller's cooldown and caps, the phone's gap and the pumping counts are not touched."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from otp.deliveries import Delivery, DeliveryStore
from otp.domain import Phone
from otp.providers import (
    CHANNELS,
    Channel,
    Outcome,
    ProviderUnavailable,
    Receipt,
    RecipientRejected,
    Sms,
    SmsSender,
)

log = logging.getLogger(__name__)

RECEIPTS = Counter(
    "rtmn_otp_receipts_total", "Delivery receipts by outcome", ["provider", "status"]
)
FALLBACKS = Counter(
    "rtmn_otp_fallbacks_total", "Codes resent after a failed delivery", ["to_provider", "channel"]
)


@dataclass(frozen=True)
class Step:
    sender: SmsSender
    channel: Channel


def plan(senders: Sequence[SmsSender]) -> tuple[Step, ...]:
    return tuple(Step(s, channel) for channel in CHANNELS for s in senders if channel in s.channels)


class Relay:
    def __init__(
        self,
        steps: Sequence[Step],
        deliveries: DeliveryStore,
        body: Callable[[str], str],
        ttl_ms: int,
    ) -> None:
        self._steps, self._deliveries, self._body, self._ttl_ms = steps, deliveries, body, ttl_ms

    def _step_of(self, provider: str, channel: Channel) -> int | None:
        for index, step in enumerate(self._steps):
            if step.sender.name == provider and step.channel == channel:
                return index
        return None

    async def hold(self, receipt: Receipt, delivery: Delivery) -> None:
        """Keeps a just-sent code until its provider reports on it."""
        step = self._step_of(receipt.provider, delivery.channel)
        if step is None:
            return
        held = Delivery(**{**delivery.__dict__, "step": step})
        await self._deliveries.hold(receipt.provider, receipt.message_id, held, self._ttl_ms)

    async def report(self, provider: str, message_id: str, outcome: Outcome) -> str:
        """Records a receipt; on a failure, hands the code to the next step. Returns what it did."""
        RECEIPTS.labels(provider, outcome).inc()
        if outcome == "pending":
            return "recorded"
        delivery = await self._deliveries.claim(provider, message_id)
        if delivery is None:
            return "unknown"  # a repeated receipt, or one for a code long gone
        if outcome == "delivered":
            return "recorded"
        if not await self._deliveries.still_live(delivery):
            return "not live"  # used, replaced or expired: nobody needs it any more
        return await self._resend(delivery)

    async def _resend(self, delivery: Delivery) -> str:
        """The same code through the next step that takes it."""
        phone = Phone(delivery.e164, delivery.region)
        for index in range(delivery.step + 1, len(self._steps)):
            step = self._steps[index]
            sms = Sms(phone, delivery.code, self._body(delivery.code), step.channel)
            try:
                receipt = await step.sender.send(sms)
            except ProviderUnavailable as error:
                log.warning("otp fallback step unavailable: %s", error)
                continue
            except RecipientRejected as error:
                log.warning("otp fallback refused for the recipient: %s", error)
                return "refused"
            FALLBACKS.labels(step.sender.name, step.channel).inc()
            log.info(
                "otp resent after a failed delivery",
                extra={"phone": phone.masked, "provider": step.sender.name,
                       "channel": step.channel},
            )  # fmt: skip
            moved = Delivery(**{**delivery.__dict__, "step": index, "channel": step.channel})
            await self._deliveries.hold(receipt.provider, receipt.message_id, moved, self._ttl_ms)
            return f"resent by {step.sender.name} {step.channel}"
        return "no step left"
