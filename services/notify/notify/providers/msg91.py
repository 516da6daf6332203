"""MSG91 over aiohttp (it has no official Python SDK): SMS through a DLT-approved flow
(`POST /api/v5/flow/`), WhatsApp through its outbound API with an approved template
(`POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`).

MSG91 has no idempotency key: a crash after it accepted and before we recorded sends again on
the retry (the delivery log's lease narrows that to one UPDATE). Every refusal is treated as
MSG91 being unavailable, as the OTP service does: the next provider of the chain may take it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from notify.providers import (
    Mode,
    TextChannel,
    TextMessage,
    TextReceipt,
    TransientSendError,
)


@dataclass(frozen=True)
class Msg91WhatsApp:
    """The WhatsApp number integrated with MSG91 (digits, country code first) and the approved
    template whose one body variable (`body_1`) is the text."""

    integrated_number: str
    template: str
    language: str = "en"
    namespace: str | None = None


class Msg91TextSender:
    name = "msg91"
    mode: Mode = "live"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        auth_key: str,
        flow_id: str | None,
        sender_id: str | None,
        text_variable: str,
        timeout_seconds: float,
        base_url: str = "https://control.msg91.com",
        whatsapp: Msg91WhatsApp | None = None,
    ) -> None:
        self._session = session
        base = base_url.rstrip("/")
        self._flow_url = base + "/api/v5/flow/"
        self._whatsapp_url = base + "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
        self._headers = {"authkey": auth_key, "accept": "application/json"}
        self._flow_id, self._sender_id = flow_id, sender_id
        self._text_variable = text_variable
        self._timeout_seconds = timeout_seconds
        self._whatsapp = whatsapp
        channels: set[TextChannel] = set()
        if flow_id:
            channels.add("sms")
        if whatsapp is not None:
            channels.add("whatsapp")
        self.channels = frozenset(channels)

    async def send(self, message: TextMessage) -> TextReceipt:
        if message.channel == "whatsapp":
            answer = await self._post(self._whatsapp_url, self._whatsapp_body(message))
            # {"status": "success", "hasError": false, "request_id": ...}
            if answer.get("status") != "success" or answer.get("hasError"):
                raise TransientSendError(f"msg91 whatsapp: status {answer.get('status')}")
            return TextReceipt(self.name, str(answer.get("request_id") or ""))
        answer = await self._post(self._flow_url, self._flow_body(message))
        # MSG91 may report an error with HTTP 200: its `type` field is the verdict; on success
        # `message` is the request id its delivery reports carry.
        if answer.get("type") != "success":
            raise TransientSendError(f"msg91 sms: type {answer.get('type')}")
        return TextReceipt(self.name, str(answer.get("message", "")))

    def _flow_body(self, message: TextMessage) -> dict[str, Any]:
        assert self._flow_id
        recipient = {"mobiles": message.to.lstrip("+"), self._text_variable: message.text}
        body: dict[str, Any] = {"flow_id": self._flow_id, "recipients": [recipient]}
        if self._sender_id:
            body["sender"] = self._sender_id
        return body

    def _whatsapp_body(self, message: TextMessage) -> dict[str, Any]:
        assert self._whatsapp
        template: dict[str, Any] = {
            "name": self._whatsapp.template,
            "language": {"code": self._whatsapp.language, "policy": "deterministic"},
            "to_and_components": [
                {
                    "to": [message.to.lstrip("+")],
                    "components": {"body_1": {"type": "text", "value": message.text}},
                }
            ],
        }
        if self._whatsapp.namespace:
            template["namespace"] = self._whatsapp.namespace
        return {
            "integrated_number": self._whatsapp.integrated_number,
            "content_type": "template",
            "payload": {"messaging_product": "whatsapp", "type": "template", "template": template},
        }

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with (
                asyncio.timeout(self._timeout_seconds),
                self._session.post(url, json=body, headers=self._headers) as response,
            ):
                status = response.status
                answer = await response.json(content_type=None) if status < 500 else None
        except TimeoutError:
            raise TransientSendError(f"msg91: no answer within {self._timeout_seconds}s") from None
        except (aiohttp.ClientError, ValueError) as error:
            raise TransientSendError(f"msg91 unreachable: {type(error).__name__}") from None
        if status >= 400 or not isinstance(answer, dict):
            # The error body may quote the number: keep the status only.
            raise TransientSendError(f"msg91 answered {status}")
        return answer
