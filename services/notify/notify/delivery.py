"""Sending one notification (email, push, SMS, WhatsApp) as far as the delivery log allows.

Each send is three steps: claim the log row in a short transaction, call the provider with no
transaction open, then record the outcome and its notification.sent / .failed event together.
A row already sent (or failed, or skipped) is never sent again. A database restart between the
provider's accept and the record is waited out (for as long as the claim's lease keeps others
from sending). Two gaps are left, both after the provider accepted: a crash before the record
(the claim's lease runs out and the redelivered event sends once more), and a call that timed out
although the provider took it (no answer is a transient failure, so the retry sends again). At
most twice, then: SendGrid has no idempotency key, FCM none across calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import cast

from notify import store
from notify.consent import Channel
from notify.domain import PushSummary, Recipient
from notify.providers import (
    EmailMessage,
    EmailSender,
    OptedOut,
    PermanentSendError,
    PushMessage,
    PushSender,
    TextChannel,
    TextMessage,
    TextSender,
    TransientSendError,
)
from notify.providers.sandbox import SandboxTextSender
from notify.store import TRANSACTIONAL, Claim, Consent, DeliveryKey
from rtmn_shared.db import Connection, Pool, write_through_outages
from rtmn_shared.events.catalogue import NotificationFailed, NotificationSent
from rtmn_shared.events.consumer import Delivery
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.outbox import Outbox, OutboxRow
from rtmn_shared.events.outcomes import Retry
from rtmn_shared.logs import mask_e164

# A text message goes to an E.164 number; user.registered's may carry spaces or hyphens.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unsendable:
    """Why a delivery cannot even be tried: recorded as it is, never retried."""

    status: str  # "failed" or "skipped"
    reason: str


UNKNOWN_RECIPIENT = Unsendable("failed", "unknown recipient")


def key(delivery: Delivery, source: str, channel: str, user_id: str, template: str) -> DeliveryKey:
    """`source` is what the message is about (a payment, a ledger entry, a user), not the
    event's id: a producer that emits the same fact twice still gets one message out."""
    return DeliveryKey(source, delivery.event.id, channel, user_id, template)


class Deliveries:
    def __init__(
        self,
        pool: Pool,
        *,
        email: EmailSender,
        push: PushSender,
        outbox: Outbox,
        lease_seconds: int,
        text: TextSender | None = None,
    ) -> None:
        self.pool = pool
        self.email_sender = email
        self.push_sender = push
        self.text_sender: TextSender = text or SandboxTextSender()
        self.outbox = outbox
        self.lease_seconds = lease_seconds

    async def email_to(
        self,
        key: DeliveryKey,
        recipient: Recipient | None,
        *,
        template_id: str,
        data: Callable[[Recipient], Mapping[str, str]],
        subject: str,
        consent: Consent = TRANSACTIONAL,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """An email to a user of the recipients read model (`key.user_id`): one notify has not
        heard of is failed ("unknown recipient"), one without an address skipped; `data` is
        built from the recipient, or from an unknown one's id."""
        return await self.email(
            key,
            to=recipient.email if recipient else None,
            template_id=template_id,
            data=data(recipient or Recipient(key.user_id, None, None)),
            subject=subject,
            unsendable=None if recipient else UNKNOWN_RECIPIENT,
            consent=consent,
            headers=headers,
        )

    async def email(
        self,
        key: DeliveryKey,
        *,
        to: str | None,
        template_id: str,
        data: Mapping[str, str],
        subject: str,
        unsendable: Unsendable | None = None,
        consent: Consent = TRANSACTIONAL,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Sends it unless the log says otherwise; the delivery's status (as `push`)."""
        provider = self.email_sender.name
        async with self.pool.acquire() as conn:
            claim = await self._claim(
                conn, key, provider, title=subject, consent=replace(consent, address=to)
            )
        if not isinstance(claim, Claim):
            return claim
        if unsendable is not None or to is None:
            why = unsendable or Unsendable("skipped", "no email address on file")
            await self._finish(key, claim, provider, why.status, error=why.reason)
            return why.status
        message = EmailMessage(
            to=to,
            template_id=template_id,
            data=data,
            custom_args={"event_id": str(key.event_id), "notification_id": str(claim.id)},
            headers=dict(headers or {}),
        )
        try:
            message_id = await self.email_sender.send(message)
        except PermanentSendError as error:
            await self._finish(key, claim, provider, "failed", error=str(error))
            return "failed"
        except Exception as error:
            await self._give_back(claim, error)
            raise
        await self._finish(key, claim, provider, "sent", message_id=message_id or None)
        return "sent"

    async def push(
        self, key: DeliveryKey, message: PushMessage, consent: Consent = TRANSACTIONAL
    ) -> str:
        """Sends it unless the log says otherwise. The delivery's status: sent, failed, skipped
        (no active device), or what kept it from being claimed (suppressed, deferred, or as it
        already was); Retry when some of it is to be tried again."""
        provider = self.push_sender.name
        claimed = await store.claim_push(
            self.pool,
            key,
            provider=provider,
            lease_seconds=self.lease_seconds,
            title=message.title,
            body=message.body,
            consent=consent,
        )
        if not isinstance(claimed, store.PushClaim):
            self._not_claimed(key, claimed)
            return claimed
        claim, tokens, sent_before = claimed.claim, claimed.tokens, claimed.sent_before
        if not tokens:
            if sent_before:
                await self._finish(key, claim, provider, "sent")
                return "sent"
            await self._finish(key, claim, provider, "skipped", error="no active device")
            return "skipped"
        try:
            results = await self.push_sender.send(message, tokens)
        except PermanentSendError as error:
            await self._finish(key, claim, provider, "failed", error=str(error))
            return "failed"
        except Exception as error:
            await self._give_back(claim, error)
            raise
        summary = PushSummary.of(results)
        status = summary.final_status(sent_before)
        first_id = next((r.message_id for r in summary.sent), None)
        outcome = store.PushOutcome(
            status,
            None if status is None else self._event(key, claim, provider, status, summary.reason()),
            results,
            summary.dead,
            first_id,
            summary.reason(),
        )
        await self._settle(lambda conn: store.finish_push(conn, claim, outcome))
        if summary.dead:
            log.info("deactivated %d dead device token(s)", len(summary.dead))
        if status is None:
            raise Retry(f"{len(summary.retry)} of {len(tokens)} token(s) to retry")
        return status

    async def text(self, key: DeliveryKey, text: str, consent: Consent = TRANSACTIONAL) -> str:
        """An SMS or WhatsApp message (`key.channel`) to the number on file, through the
        provider chain; the delivery's status, as `push`. Nothing to send to is `skipped` with
        the reason; a number the provider refuses is `failed`; all providers down: Retry."""
        channel = cast(TextChannel, key.channel)
        chain = self.text_sender.name
        claimed = await store.claim_text(
            self.pool,
            key,
            provider=chain,
            lease_seconds=self.lease_seconds,
            title=None,
            body=text,
            consent=consent,
        )
        if not isinstance(claimed, store.TextClaim):
            self._not_claimed(key, claimed)
            return claimed
        claim = claimed.claim
        phone = _e164(claimed.phone)
        why = None
        if claimed.phone is None:
            why = "no phone number on file"
        elif phone is None:
            why = "no usable phone number on file"
        elif channel not in self.text_sender.channels:
            why = f"no {channel} provider configured"
        if why is not None or phone is None:
            await self._finish(key, claim, chain, "skipped", error=why)
            return "skipped"
        try:
            receipt = await self.text_sender.send(TextMessage(phone, text, channel))
        except OptedOut as error:
            log.info("%s to %s suppressed: %s", channel, mask_e164(phone), error)
            await self._finish(key, claim, chain, "suppressed", error=str(error))
            return "suppressed"
        except PermanentSendError as error:
            log.info("%s to %s refused: %s", channel, mask_e164(phone), error)
            await self._finish(key, claim, chain, "failed", error=str(error))
            return "failed"
        except Exception as error:
            await self._give_back(claim, error)
            raise
        await self._finish(
            key, claim, receipt.provider, "sent", message_id=receipt.message_id or None
        )
        return "sent"

    async def _give_back(self, claim: Claim, error: Exception) -> None:
        """Releases the claim so the next attempt need not wait out the lease; a transient
        provider error becomes a Retry, anything else propagates as it is."""
        await store.release(self.pool, claim.id, _describe(error))
        if isinstance(error, TransientSendError):
            raise Retry(str(error)) from None

    async def _claim(
        self,
        conn: Connection,
        key: DeliveryKey,
        provider: str,
        *,
        title: str | None = None,
        body: str | None = None,
        consent: Consent = TRANSACTIONAL,
    ) -> Claim | str:
        claimed = await store.claim(
            conn,
            key,
            provider=provider,
            lease_seconds=self.lease_seconds,
            title=title,
            body=body,
            consent=consent,
        )
        if isinstance(claimed, Claim):
            return claimed
        self._not_claimed(key, claimed)
        return claimed

    @staticmethod
    def _not_claimed(key: DeliveryKey, status: str) -> None:
        if status == "queued":
            # Another worker is sending this very delivery now; look again after it finished.
            raise Retry(f"{key.channel} {key.template} is being sent by another worker")
        if status in ("suppressed", "deferred"):
            # Recorded on the row (the reason, or when quiet hours end); nothing to send now.
            log.info("%s %s %s", key.channel, key.template, status)
            return
        log.info("%s %s already %s; not sending again", key.channel, key.template, status)

    async def _finish(
        self,
        key: DeliveryKey,
        claim: Claim,
        provider: str,
        status: str,
        *,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:

        async def record(conn: Connection) -> None:
            await self._record(
                conn, key, claim, provider, status, message_id=message_id, error=error
            )

        await self._settle(record)

    async def _settle(self, record: Callable[[Connection], Awaitable[object]]) -> None:
        """Writes what the provider did, which cannot be taken back: a database restart is waited
        out while the claim's lease keeps others from sending. `record` writes only while it
        still holds the claim, so a retry after a commit whose answer was lost writes nothing
        twice."""
        await write_through_outages(
            self.pool, record, within=self.lease_seconds, one_statement=True
        )

    async def _record(
        self,
        conn: Connection,
        key: DeliveryKey,
        claim: Claim,
        provider: str,
        status: str,
        *,
        message_id: str | None,
        error: str | None,
    ) -> bool:
        """The outcome and its notification.sent / .failed event, if `claim` is still held;
        whether it was."""
        row = self._event(key, claim, provider, status, error)
        return await store.finish_held(
            conn, claim, status, row, provider=provider, message_id=message_id, error=error
        )

    def _event(
        self, key: DeliveryKey, claim: Claim, provider: str, status: str, error: str | None
    ) -> OutboxRow:
        """The notification.sent / .failed event of an outcome."""
        event = NotificationSent if status == "sent" else NotificationFailed
        reason = f"{status}: {error}" if status in ("skipped", "suppressed") else error
        data = event(
            notification_id=str(claim.id),
            event_id=str(key.event_id),
            channel=cast(Channel, key.channel),
            user_id=key.user_id,
            provider=provider,
            reason=reason,
        )
        return OutboxRow.of(CloudEvent.of(data, source=self.outbox.source))


def _describe(error: Exception) -> str:
    if isinstance(error, TransientSendError):
        return str(error)
    return f"{type(error).__name__}: {error}"[:1000]


def _e164(phone: str | None) -> str | None:
    """The number as E.164, or None if it is not one (spaces, hyphens and brackets dropped)."""
    if phone is None:
        return None
    number = re.sub(r"[\s()-]", "", phone)
    return number if E164.match(number) else None
