"""The two use cases: send a code, verify a code. Redis holds the state, the outbox the event."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter
from redis.exceptions import RedisError

from otp.deliveries import Delivery
from otp.domain import Hasher, Phone, destination_prefix, new_code, sms_body
from otp.providers import (
    Channel,
    ProviderUnavailable,
    Receipt,
    RecipientRejected,
    Sms,
    SmsSender,
)
from otp.pumping import PrefixGuard
from otp.relay import Relay
from otp.store import Admitted, Coalesced, CodeStore, Keys
from otp.tokens import TokenSigner
from rtmn_shared.events.catalogue import OtpVerified
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.clients import client_key

log = logging.getLogger(__name__)

SENDS = Counter("rtmn_otp_sends_total", "OTP send requests by outcome", ["outcome", "provider"])
BY_CHANNEL = Counter("rtmn_otp_channel_sends_total", "Codes handed to a provider", ["channel"])
PREFIX_BLOCKS = Counter(
    "rtmn_otp_prefix_blocks_total",
    "Destination prefixes blocked for SMS pumping (conversion under the floor)",
    ["region"],
)
CHECKS = Counter("rtmn_otp_verifications_total", "OTP verifications by outcome", ["outcome"])


@dataclass(frozen=True)
class Sent:
    expires_in: int
    retry_after: int


@dataclass(frozen=True)
class Verified:
    token: str
    expires_in: int
    claims: dict[str, Any]


class Limited(Exception):
    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


class Undeliverable(Exception):
    """The provider refuses this number; the code was withdrawn."""


class ChannelUnavailable(Exception):
    """No configured provider offers the channel asked for; nothing was counted."""


class SmsDown(Exception):
    """No provider took the message; the code was withdrawn."""


class WrongCode(Exception):
    def __init__(self, attempts_left: int) -> None:
        super().__init__("wrong or expired code")
        self.attempts_left = attempts_left


class EventNotRecorded(Exception):
    """The database refused the otp.verified row: no token is issued without its event."""


@dataclass(frozen=True)
class OtpFlows:
    store: CodeStore
    hasher: Hasher
    sender: SmsSender
    signer: TokenSigner
    unit: UnitOfWork
    outbox: Outbox
    prefixes: PrefixGuard
    app_name: str = "RTMN"
    app_hash: str | None = None
    prefix_digits: int = 4
    relay: Relay | None = None  # None: no delivery receipts (the sandbox, or no public URL)

    def keys(self, phone: Phone, purpose: str, client: str) -> Keys:
        return Keys.of(self.hasher.phone(phone), purpose, self.hasher.client(client_key(client)))

    async def send(self, phone: Phone, purpose: str, client: str, channel: Channel = "sms") -> Sent:
        """One live code per phone and purpose whatever the channel: a resend by another channel
        replaces it, and the cooldown and caps count sends on every channel together."""
        if channel not in self.sender.channels:
            raise ChannelUnavailable(channel)
        prefix = destination_prefix(phone, self.prefix_digits)
        await self._check_prefix(prefix, phone)
        code = new_code()
        digest = self.hasher.code(purpose, phone, code)
        keys = self.keys(phone, purpose, client)
        admission = await self.store.admit(keys, digest)
        rules = self.store.rules
        sent = Sent(expires_in=rules.code_ttl_ms // 1000, retry_after=rules.cooldown_ms // 1000)
        if isinstance(admission, Coalesced):
            # The phone got a fresh code moments ago: this caller is told what any sender is.
            SENDS.labels("coalesced", "none").inc()
            log.info("otp send coalesced", extra={"phone": phone.masked})
            return sent
        if not isinstance(admission, Admitted):
            SENDS.labels(f"limited_{admission.reason}", "none").inc()
            log.info("otp send refused: %s", admission.reason, extra={"phone": phone.masked})
            raise Limited(admission.reason, admission.retry_after_s)
        minutes = max(1, rules.code_ttl_ms // 60_000)
        body = sms_body(code, app_name=self.app_name, minutes=minutes, app_hash=self.app_hash)
        try:
            receipt = await self.sender.send(Sms(phone, code, body, channel))
        except (ProviderUnavailable, RecipientRejected) as error:
            # Nobody received it, so nobody may use it: withdraw the code and the cooldown.
            await self.store.discard(keys, digest)
            rejected = isinstance(error, RecipientRejected)
            SENDS.labels("rejected" if rejected else "unavailable", error.provider).inc()
            log.warning("otp not sent: %s", error, extra={"phone": phone.masked})
            if rejected:
                raise Undeliverable from None
            raise SmsDown from None
        SENDS.labels("sent", receipt.provider).inc()
        BY_CHANNEL.labels(channel).inc()
        log.info(
            "otp sent",
            extra={"phone": phone.masked, "purpose": purpose, "provider": receipt.provider,
                   "channel": channel},
        )  # fmt: skip
        held = Delivery(phone.e164, phone.region, purpose, code, digest, keys.code, 0, channel)
        await self._sent(prefix, receipt, held)
        return sent

    async def _sent(self, prefix: str, receipt: Receipt, held: Delivery) -> None:
        """Counts the send for its prefix and keeps the code for a fallback on silence."""
        try:
            await self.prefixes.sent(prefix)
            if self.relay is not None:
                await self.relay.hold(receipt, held)
        except RedisError as error:
            # The code went out and the caller gets it: only this bookkeeping is lost.
            log.warning("otp send not counted or held: %s", type(error).__name__)

    async def _check_prefix(self, prefix: str, phone: Phone) -> None:
        """Refuses codes to a range whose conversion collapsed (SMS pumping), until allowed."""
        admitted, just_blocked = await self.prefixes.admits(prefix)
        if just_blocked:
            PREFIX_BLOCKS.labels(phone.region).inc()
            log.warning(
                "otp destination prefix blocked: conversion under the floor",
                extra={"prefix": prefix},
            )
        if not admitted:
            SENDS.labels("limited_pumping", "none").inc()
            raise Limited("pumping", self.prefixes.rules.window_ms // 1000)

    async def verify(self, phone: Phone, purpose: str, code: str, client: str) -> Verified:
        phone_hash = self.hasher.phone(phone)
        checked = await self.store.check(
            self.keys(phone, purpose, client), self.hasher.code(purpose, phone, code)
        )
        CHECKS.labels(checked.verdict).inc()
        if checked.verdict != "ok":
            raise WrongCode(checked.attempts_left)
        # The code is spent: the event commits before any token leaves, so a token implies it.
        try:
            async with self.unit.transaction() as conn:
                await self.outbox.add(conn, OtpVerified(phone_hash=phone_hash, purpose=purpose))
        except (OSError, asyncpg.PostgresError) as error:
            log.error("otp.verified not recorded: %s", type(error).__name__)
            raise EventNotRecorded from None
        try:
            await self.prefixes.verified(destination_prefix(phone, self.prefix_digits))
        except RedisError as error:
            # The code is spent and the event recorded: the user gets the token; the prefix's
            # conversion merely reads a little low.
            log.warning("otp verification not counted for its prefix: %s", type(error).__name__)
        token, claims = self.signer.issue(phone.e164, purpose)
        log.info("otp verified", extra={"phone": phone.masked, "purpose": purpose})
        return Verified(token, self.signer.ttl_s, claims)
