"""Twilio for the code: SMS and WhatsApp (Messages API), voice (Calls API, TwiML `<Say>` in
en-IN), sent through the shared client (`rtmn_shared.providers.twilio`: the SDK's async client,
our deadline, its errors read once); and its status callbacks (signed with X-Twilio-Signature)
read into our delivery reports once."""

from __future__ import annotations

import logging
from typing import TypedDict, cast

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from otp.providers import (
    BadReport,
    Channel,
    DeliveryReport,
    Outcome,
    ProviderUnavailable,
    Receipt,
    RecipientRejected,
    Sms,
)
from rtmn_shared.providers.twilio import RECIPIENT_ERRORS, TwilioClient, TwilioFailed
from rtmn_shared.providers.twilio import TwilioWhatsApp as WhatsApp

__all__ = ["RECIPIENT_ERRORS", "StatusCallbacks", "TwilioSender", "WhatsApp", "spoken"]

log = logging.getLogger(__name__)


def spoken(code: str, app_name: str) -> str:
    """TwiML that reads the code twice, digit by digit, in Indian English."""
    digits = ", ".join(code)
    response = VoiceResponse()
    response.say(f"Your {app_name} verification code is: {digits}.", language="en-IN")
    response.pause(length=1)
    response.say(f"Again, your code is: {digits}.", language="en-IN")
    return str(response.to_xml(xml_declaration=False))


class TwilioSender:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        timeout_s: float,
        base_url: str | None = None,
        whatsapp: WhatsApp | None = None,
        voice_from: str | None = None,
        app_name: str = "RTMN",
        status_callback: str | None = None,
    ) -> None:
        # Built inside the running loop (its aiohttp session binds to it).
        self._client = TwilioClient(
            account_sid=account_sid, auth_token=auth_token, timeout_s=timeout_s, base_url=base_url
        )
        self._from = from_number
        self._service = messaging_service_sid
        self._whatsapp = whatsapp
        self._voice_from = voice_from or from_number
        self._app_name = app_name
        self._callback = status_callback
        channels: set[Channel] = {"sms"}
        if whatsapp is not None:
            channels.add("whatsapp")
        if self._voice_from:
            channels.add("voice")
        self.channels = frozenset(channels)

    async def close(self) -> None:
        await self._client.close()

    async def _create(self, sms: Sms) -> str:
        """Hands the message or call to Twilio; returns its sid."""
        to, callback = sms.phone.e164, self._callback
        if sms.channel == "voice":
            assert self._voice_from
            twiml = spoken(sms.code, self._app_name)
            return await self._client.call(
                to, from_number=self._voice_from, twiml=twiml, status_callback=callback
            )
        if sms.channel == "whatsapp":
            assert self._whatsapp
            return await self._client.whatsapp(
                to, self._whatsapp, {"1": sms.code}, status_callback=callback
            )
        return await self._client.sms(
            to,
            sms.body,
            from_number=self._from,
            messaging_service_sid=self._service,
            status_callback=callback,
        )

    async def send(self, sms: Sms) -> Receipt:
        try:
            sid = await self._create(sms)
        except TwilioFailed as failure:
            if failure.verdict == "recipient":
                raise RecipientRejected(self.name, failure.reason) from None
            if failure.verdict == "account":
                log.error(
                    "twilio refused our request (%s): check the account settings", failure.reason
                )
            # A second copy of one code is harmless: an unreadable answer may have sent.
            raise ProviderUnavailable(self.name, failure.reason) from None
        return Receipt(self.name, sid)


# -- status callbacks --------------------------------------------------------------------------

# Messages: https://www.twilio.com/docs/messaging/api/message-resource#message-status-values;
# calls: completed, or busy / no-answer / failed / canceled.
TWILIO_OUTCOMES: dict[str, Outcome] = {
    "delivered": "delivered",
    "read": "delivered",
    "completed": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "busy": "failed",
    "no-answer": "failed",
    "canceled": "failed",
}


class StatusCallback(TypedDict, total=False):
    """The form fields we read (Twilio posts more; all of them are signed)."""

    AccountSid: str
    MessageSid: str
    MessageStatus: str
    CallSid: str
    CallStatus: str


class StatusCallbacks:
    """Checks and reads the callbacks of one account, posted to the URL Twilio was given."""

    def __init__(self, account_sid: str, auth_token: str, url: str) -> None:
        self._account_sid, self._url = account_sid, url
        self._validator = RequestValidator(auth_token)

    def read(self, params: dict[str, str], signature: str) -> DeliveryReport:
        """Raises `BadReport` (403 forged or another account's, 400 about nothing we sent)."""
        # Signed over the URL Twilio was given (ours, not as a proxy rewrote it) + sorted params.
        if not signature or not self._validator.validate(self._url, params, signature):
            raise BadReport(403, "the X-Twilio-Signature does not match")
        return _report(cast(StatusCallback, params), self._account_sid)


def _report(callback: StatusCallback, account_sid: str) -> DeliveryReport:
    if callback.get("AccountSid") != account_sid:
        raise BadReport(403, "the callback is for another account")
    if "MessageSid" in callback:
        sid, status = callback["MessageSid"], callback.get("MessageStatus", "")
    elif "CallSid" in callback:
        sid, status = callback["CallSid"], callback.get("CallStatus", "")
    else:
        raise BadReport(400, "a MessageSid or CallSid is required")
    return DeliveryReport(sid, status, TWILIO_OUTCOMES.get(status, "pending"))
