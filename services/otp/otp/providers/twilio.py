"""Twilio Programmable Messaging through the official SDK's async client."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from otp.providers import ProviderUnavailable, Receipt, RecipientRejected, Sms

log = logging.getLogger(__name__)

# Twilio's errors about the destination itself: another provider would be refused the same way,
# and 21610 (the user texted STOP) must not be routed around.
RECIPIENT_ERRORS = frozenset({21211, 21214, 21217, 21408, 21610, 21612, 21614})


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

    async def close(self) -> None:
        await self._http.close()

    async def send(self, sms: Sms) -> Receipt:
        sender = (
            {"messaging_service_sid": self._service} if self._service else {"from_": self._from}
        )
        try:
            # The SDK ignores its own timeout on the async client: the deadline is ours.
            async with asyncio.timeout(self._timeout_s):
                message = await self._client.messages.create_async(
                    to=sms.phone.e164, body=sms.body, **sender
                )
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
        return Receipt(self.name, str(message.sid))
