"""Twilio through the official SDK's async client, once for otp and notify: SMS from a number or
a Messaging Service, WhatsApp with an approved Content template, voice calls with TwiML; each call
under our deadline, and every error read into one `TwilioFailed`.

Traps (docs/PROVIDERS): the async client must be built inside the running loop and closed; its
own timeout is ignored (ours wraps each call); `max_retries` would retry a POST on 5xx and send
twice, so it stays off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

# Twilio's errors about the destination itself (not a valid number, not a mobile, landline,
# unsubscribed with STOP...): another provider would be refused too, and 21610 must not be
# routed around.
RECIPIENT_ERRORS = frozenset({21211, 21214, 21217, 21408, 21610, 21612, 21614})

# unavailable: timeout, connection failure, 429, 5xx, an unreadable answer (another provider, or
# a later try, may take it); recipient: the number itself is refused; account: Twilio refused
# our request (credentials, sender, template): worth an error log line, then another provider.
Verdict = Literal["unavailable", "recipient", "account"]
# What went wrong: no answer in time, no connection, an HTTP refusal, an answer we cannot read.
Cause = Literal["timeout", "unreachable", "refused", "unreadable"]


class TwilioFailed(Exception):
    """Twilio did not take the message. `reason` never quotes Twilio's message, which names the
    number: the deadline, the connection error's type, or the HTTP status and Twilio's code."""

    def __init__(
        self,
        verdict: Verdict,
        cause: Cause,
        reason: str,
        *,
        status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.verdict, self.cause, self.reason = verdict, cause, reason
        self.status, self.code = status, code


@dataclass(frozen=True)
class TwilioWhatsApp:
    """A WhatsApp sender number (E.164) and the approved template (Content API `HX...`) whose
    variable `{{1}}` carries our text: outside a 24-hour session WhatsApp delivers templates
    only."""

    from_number: str
    content_sid: str


class TwilioClient:
    """One account's Messages and Calls, built inside the running loop (its aiohttp session
    binds to it); `close()` it."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        timeout_s: float,
        base_url: str | None = None,
    ) -> None:
        self._http = AsyncTwilioHttpClient(max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url is not None:
            self._client.api.base_url = base_url
        self._timeout_s = timeout_s

    async def close(self) -> None:
        await self._http.close()

    async def sms(
        self,
        to: str,
        body: str,
        *,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str | None = None,
    ) -> str:
        """Sends from the Messaging Service when there is one, else from the number; returns
        the message sid."""
        sender = (
            {"messaging_service_sid": messaging_service_sid}
            if messaging_service_sid
            else {"from_": from_number}
        )
        create = self._client.messages.create_async
        return await self._sid(
            lambda: create(to=to, body=body, **sender, **_callback(status_callback))
        )

    async def whatsapp(
        self,
        to: str,
        whatsapp: TwilioWhatsApp,
        variables: Mapping[str, str],
        *,
        status_callback: str | None = None,
    ) -> str:
        """The approved template filled with `variables` (e.g. `{"1": text}`); the message
        sid."""
        create = self._client.messages.create_async
        return await self._sid(
            lambda: create(
                to=f"whatsapp:{to}",
                from_=f"whatsapp:{whatsapp.from_number}",
                content_sid=whatsapp.content_sid,
                content_variables=json.dumps(dict(variables)),
                **_callback(status_callback),
            )
        )

    async def call(
        self, to: str, *, from_number: str, twiml: str, status_callback: str | None = None
    ) -> str:
        """A voice call that plays `twiml`; returns the call sid."""
        create = self._client.calls.create_async
        return await self._sid(
            lambda: create(to=to, from_=from_number, twiml=twiml, **_callback(status_callback))
        )

    async def _sid(self, create: Callable[[], Awaitable[Any]]) -> str:
        """Runs one create under our deadline; raises `TwilioFailed`."""
        try:
            # The SDK ignores its own timeout on the async client: the deadline is ours.
            async with asyncio.timeout(self._timeout_s):
                created = await create()
        except TimeoutError:
            reason = f"no answer within {self._timeout_s}s"
            raise TwilioFailed("unavailable", "timeout", reason) from None
        except aiohttp.ClientError as error:
            raise TwilioFailed("unavailable", "unreachable", type(error).__name__) from None
        except TwilioRestException as error:
            raise refused(error) from None
        except TwilioException:
            # An unreadable answer: it may have sent, but a second copy is the lesser harm.
            raise TwilioFailed("unavailable", "unreadable", "unreadable answer") from None
        return str(created.sid)


def refused(error: TwilioRestException) -> TwilioFailed:
    """An HTTP refusal read by its status and Twilio's code (str(error) quotes the number)."""
    status, code = error.status, error.code
    verdict: Verdict
    if status == 429 or status >= 500:
        verdict = "unavailable"
    elif code in RECIPIENT_ERRORS:
        verdict = "recipient"
    else:
        verdict = "account"
    reason = f"HTTP {status}, code {code}"
    return TwilioFailed(verdict, "refused", reason, status=status, code=code)


def _callback(url: str | None) -> dict[str, str]:
    return {"status_callback": url} if url else {}
