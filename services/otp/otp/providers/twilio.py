"""Twilio through the official SDK's async client: SMS and WhatsApp (Messages API), voice (Calls
API, TwiML `<Say>` in en-IN); and its status callbacks (signed with X-Twilio-Signature) read into
our delivery reports once."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TypedDict, cast

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
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

log = logging.getLogger(__name__)

# Twilio's errors about the destination itself: another provider would be refused the same way,
# and 21610 (the user texted STOP) must not be routed around.
RECIPIENT_ERRORS = frozenset({21211, 21214, 21217, 21408, 21610, 21612, 21614})


@dataclass(frozen=True)
class WhatsApp:
    """A WhatsApp sender number and the approved template (Content API `HX...`) whose variable
    `{{1}}` is the code: outside a 24-hour session WhatsApp delivers only approved templates."""

    from_number: str
    content_sid: str


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
        # Built inside the running loop (its aiohttp session binds to it); max_retries stays
        # None because the SDK would retry a POST on 5xx and could send the SMS twice.
        self._http = AsyncTwilioHttpClient(max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url is not None:
            self._client.api.base_url = base_url
        self._from = from_number
        self._service = messaging_service_sid
        self._timeout_s = timeout_s
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
        await self._http.close()

    async def _create(self, sms: Sms) -> str:
        """Hands the message or call to Twilio; returns its sid."""
        callback = {"status_callback": self._callback} if self._callback else {}
        if sms.channel == "voice":
            assert self._voice_from
            call = await self._client.calls.create_async(
                to=sms.phone.e164,
                from_=self._voice_from,
                twiml=spoken(sms.code, self._app_name),
                **callback,
            )
            return str(call.sid)
        if sms.channel == "whatsapp":
            assert self._whatsapp
            message = await self._client.messages.create_async(
                to=f"whatsapp:{sms.phone.e164}",
                from_=f"whatsapp:{self._whatsapp.from_number}",
                content_sid=self._whatsapp.content_sid,
                content_variables=json.dumps({"1": sms.code}),
                **callback,
            )
            return str(message.sid)
        sender = (
            {"messaging_service_sid": self._service} if self._service else {"from_": self._from}
        )
        message = await self._client.messages.create_async(
            to=sms.phone.e164, body=sms.body, **sender, **callback
        )
        return str(message.sid)

    async def send(self, sms: Sms) -> Receipt:
        try:
            # The SDK ignores its own timeout on the async client: the deadline is ours.
            async with asyncio.timeout(self._timeout_s):
                sid = await self._create(sms)
        except TimeoutError:
            raise ProviderUnavailable(self.name, f"no answer within {self._timeout_s}s") from None
        except aiohttp.ClientError as error:
            raise ProviderUnavailable(self.name, type(error).__name__) from None
        except TwilioRestException as error:
            # str(error) quotes Twilio's message, which names the number: keep status and code.
            reason = f"HTTP {error.status}, code {error.code}"
            if error.status == 429 or error.status >= 500:
                raise ProviderUnavailable(self.name, reason) from None
            if error.code in RECIPIENT_ERRORS:
                raise RecipientRejected(self.name, reason) from None
            log.error("twilio refused our request (%s): check the account settings", reason)
            raise ProviderUnavailable(self.name, reason) from None
        except TwilioException:
            # An unreadable answer: it may have sent, but a second copy of one code is harmless.
            raise ProviderUnavailable(self.name, "unreadable answer") from None
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
