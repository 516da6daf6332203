"""Twilio Programmable Messaging: SMS from our number or Messaging Service, WhatsApp from a
WhatsApp sender with an approved Content template whose variable `{{1}}` is the text (outside a
24-hour session WhatsApp delivers templates only).

The wire calls, our deadline and the reading of Twilio's errors live once, shared with the OTP
service, in `rtmn_shared.providers.twilio` (its traps are noted there); this maps our
`TextMessage` onto it.
"""

from __future__ import annotations

import logging

from notify.providers import (
    Mode,
    OptedOut,
    PermanentSendError,
    TextChannel,
    TextMessage,
    TextReceipt,
    TransientSendError,
)
from rtmn_shared.providers.twilio import (
    RECIPIENT_ERRORS,
    TwilioClient,
    TwilioFailed,
    TwilioWhatsApp,
)

__all__ = ["RECIPIENT_ERRORS", "TwilioTextSender", "TwilioWhatsApp"]

log = logging.getLogger(__name__)
# "Attempt to send to unsubscribed recipient": the number replied STOP to our sender.
STOPPED = 21610


class TwilioTextSender:
    name = "twilio"
    mode: Mode = "live"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        timeout_seconds: float,
        base_url: str | None = None,
        whatsapp: TwilioWhatsApp | None = None,
    ) -> None:
        self._client = TwilioClient(
            account_sid=account_sid,
            auth_token=auth_token,
            timeout_s=timeout_seconds,
            base_url=base_url,
        )
        self._from, self._service = from_number, messaging_service_sid
        self._whatsapp = whatsapp
        channels: set[TextChannel] = set()
        if from_number or messaging_service_sid:
            channels.add("sms")
        if whatsapp is not None:
            channels.add("whatsapp")
        self.channels = frozenset(channels)

    async def close(self) -> None:
        await self._client.close()

    async def _create(self, message: TextMessage) -> str:
        if message.channel == "whatsapp":
            assert self._whatsapp
            return await self._client.whatsapp(message.to, self._whatsapp, {"1": message.text})
        return await self._client.sms(
            message.to, message.text, from_number=self._from, messaging_service_sid=self._service
        )

    async def send(self, message: TextMessage) -> TextReceipt:
        try:
            sid = await self._create(message)
        except TwilioFailed as failure:
            reason = _reason(failure)
            if failure.code == STOPPED:
                raise OptedOut(f"{reason}: the recipient replied STOP") from None
            if failure.verdict == "recipient":
                raise PermanentSendError(reason) from None
            if failure.verdict == "account":
                log.error("twilio refused our request (%s): check the account settings", reason)
            raise TransientSendError(reason) from None
        return TextReceipt(self.name, sid)


def _reason(failure: TwilioFailed) -> str:
    """Our error text: status and code only (Twilio's message names the number)."""
    if failure.cause == "refused":
        return f"twilio answered {failure.status}, code {failure.code}"
    if failure.cause == "unreachable":
        return f"twilio unreachable: {failure.reason}"
    return f"twilio: {failure.reason}"
