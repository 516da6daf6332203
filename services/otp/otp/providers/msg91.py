"""MSG91 SendSMS through a DLT-approved flow (plain HTTP: MSG91 has no official Python SDK)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from otp.providers import Channel, ProviderUnavailable, Receipt, Sms


class Msg91Sender:
    name = "msg91"
    channels: frozenset[Channel] = frozenset({"sms"})

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        auth_key: str,
        flow_id: str,
        sender_id: str | None,
        code_variable: str,
        timeout_s: float,
        base_url: str = "https://control.msg91.com",
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/api/v5/flow/"
        self._auth_key = auth_key
        self._flow_id, self._sender_id = flow_id, sender_id
        self._code_variable = code_variable
        self._timeout_s = timeout_s

    async def send(self, sms: Sms) -> Receipt:
        # Our code travels as a flow variable, so Redis stays the one source of truth for it.
        recipient = {"mobiles": sms.phone.e164.lstrip("+"), self._code_variable: sms.code}
        body: dict[str, Any] = {"flow_id": self._flow_id, "recipients": [recipient]}
        if self._sender_id:
            body["sender"] = self._sender_id
        headers = {"authkey": self._auth_key, "accept": "application/json"}
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.post(self._url, json=body, headers=headers) as response,
            ):
                status = response.status
                answer = await response.json(content_type=None) if status < 500 else None
        except TimeoutError:
            raise ProviderUnavailable(self.name, f"no answer within {self._timeout_s}s") from None
        except (aiohttp.ClientError, ValueError) as error:
            raise ProviderUnavailable(self.name, type(error).__name__) from None
        # MSG91 may report an error with HTTP 200: its `type` field is the verdict.
        if status >= 400 or not isinstance(answer, dict) or answer.get("type") != "success":
            kind = answer.get("type") if isinstance(answer, dict) else None
            raise ProviderUnavailable(self.name, f"HTTP {status}, type {kind}")
        return Receipt(self.name, str(answer.get("message", "")))
