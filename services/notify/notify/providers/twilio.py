"""Twilio Programmable Messaging through the official SDK's async client: SMS from our number or
Messaging Service, WhatsApp from a WhatsApp sender with an approved Content template whose
variable `{{1}}` is the text (outside a 24-hour session WhatsApp delivers templates only).

Traps (docs/PROVIDERS): the async client must be built inside the running loop and closed; its
own timeout is ignored (ours wraps each call); `max_retries` would retry a POST on 5xx and send
twice, so it stays off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from notify.providers import (
    Mode,
    PermanentSendError,
    TextChannel,
    TextMessage,
    TextReceipt,
    TransientSendError,
)

log = logging.getLogger(__name__)

# Twilio's errors about the destination itself (not a valid number, not a mobile, landline,
# unsubscribed with STOP...): another provider would be refused too, and 21610 must not be
# routed around.
RECIPIENT_ERRORS = frozenset({21211, 21214, 21217, 21408, 21610, 21612, 21614})


@dataclass(frozen=True)
class TwilioWhatsApp:
    from_number: str  # E.164 of the WhatsApp sender
    content_sid: str  # HX...: the approved template, `{{1}}` the text


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
        self._http = AsyncTwilioHttpClient(max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url is not None:
            self._client.api.base_url = base_url
        self._from, self._service = from_number, messaging_service_sid
        self._timeout_seconds = timeout_seconds
        self._whatsapp = whatsapp
        channels: set[TextChannel] = set()
        if from_number or messaging_service_sid:
            channels.add("sms")
        if whatsapp is not None:
            channels.add("whatsapp")
        self.channels = frozenset(channels)

    async def close(self) -> None:
        await self._http.close()

    async def _create(self, message: TextMessage) -> str:
        if message.channel == "whatsapp":
            assert self._whatsapp
            created = await self._client.messages.create_async(
                to=f"whatsapp:{message.to}",
                from_=f"whatsapp:{self._whatsapp.from_number}",
                content_sid=self._whatsapp.content_sid,
                content_variables=json.dumps({"1": message.text}),
            )
            return str(created.sid)
        sender = (
            {"messaging_service_sid": self._service} if self._service else {"from_": self._from}
        )
        created = await self._client.messages.create_async(
            to=message.to, body=message.text, **sender
        )
        return str(created.sid)

    async def send(self, message: TextMessage) -> TextReceipt:
        try:
            async with asyncio.timeout(self._timeout_seconds):
                sid = await self._create(message)
        except TimeoutError:
            raise TransientSendError(f"twilio: no answer within {self._timeout_seconds}s") from None
        except aiohttp.ClientError as error:
            raise TransientSendError(f"twilio unreachable: {type(error).__name__}") from None
        except TwilioRestException as error:
            # str(error) quotes Twilio's message, which names the number: status and code only.
            reason = f"twilio answered {error.status}, code {error.code}"
            if error.code in RECIPIENT_ERRORS:
                raise PermanentSendError(reason) from None
            if error.status < 500 and error.status != 429:
                log.error("twilio refused our request (%s): check the account settings", reason)
            raise TransientSendError(reason) from None
        except TwilioException:
            raise TransientSendError("twilio: unreadable answer") from None
        return TextReceipt(self.name, sid)
