"""MSG91 over aiohttp (it has no official Python SDK), once for otp and notify: SMS through a
DLT-approved flow (`POST /api/v5/flow/`), WhatsApp through its outbound API with an approved
template (`POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`); each call under our deadline,
and every failure read into one `Msg91Failed`.

MSG91 has no idempotency key, and may report an error with HTTP 200: the answer's `type` (flow)
or `status` (WhatsApp) is the verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

# What went wrong: no answer in time; no connection or an unreadable body; an HTTP error (or an
# answer that is not an object); a well-formed answer that says no.
Cause = Literal["timeout", "unreachable", "answered", "refused"]


class Msg91Failed(Exception):
    """MSG91 did not take the message. `reason` never quotes MSG91's body, which may name the
    number: the deadline, the connection error's type, or the HTTP status and the answer's
    verdict (`said`)."""

    def __init__(
        self, cause: Cause, reason: str, *, status: int | None = None, said: object = None
    ) -> None:
        super().__init__(reason)
        self.cause, self.reason, self.status, self.said = cause, reason, status, said


@dataclass(frozen=True)
class Msg91WhatsApp:
    """The WhatsApp number integrated with MSG91 (digits, country code first) and the approved
    template whose one body variable (`body_1`) is the text."""

    integrated_number: str
    template: str
    language: str = "en"
    namespace: str | None = None


class Msg91Client:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        auth_key: str,
        timeout_s: float,
        base_url: str = "https://control.msg91.com",
    ) -> None:
        self._session = session
        base = base_url.rstrip("/")
        self._flow_url = base + "/api/v5/flow/"
        self._whatsapp_url = base + "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
        self._headers = {"authkey": auth_key, "accept": "application/json"}
        self._timeout_s = timeout_s

    async def flow(
        self, flow_id: str, to: str, variables: Mapping[str, str], *, sender_id: str | None
    ) -> str:
        """One SMS of the flow to `to` (E.164), its variables filled; returns the request id
        MSG91's delivery reports carry. Raises `Msg91Failed`."""
        recipient = {"mobiles": to.lstrip("+"), **variables}
        body: dict[str, Any] = {"flow_id": flow_id, "recipients": [recipient]}
        if sender_id:
            body["sender"] = sender_id
        status, answer = await self._post(self._flow_url, body, "type")
        if answer.get("type") != "success":
            raise _refused(status, answer, "type")
        # On success `message` is the request id.
        return str(answer.get("message", ""))

    async def whatsapp(self, whatsapp: Msg91WhatsApp, to: str, text: str) -> str:
        """The approved template to `to` (E.164), `body_1` the text; returns its request id.
        Raises `Msg91Failed`."""
        template: dict[str, Any] = {
            "name": whatsapp.template,
            "language": {"code": whatsapp.language, "policy": "deterministic"},
            "to_and_components": [
                {
                    "to": [to.lstrip("+")],
                    "components": {"body_1": {"type": "text", "value": text}},
                }
            ],
        }
        if whatsapp.namespace:
            template["namespace"] = whatsapp.namespace
        body = {
            "integrated_number": whatsapp.integrated_number,
            "content_type": "template",
            "payload": {"messaging_product": "whatsapp", "type": "template", "template": template},
        }
        # {"status": "success", "hasError": false, "request_id": ...}
        status, answer = await self._post(self._whatsapp_url, body, "status")
        if answer.get("status") != "success" or answer.get("hasError"):
            raise _refused(status, answer, "status")
        return str(answer.get("request_id") or "")

    async def _post(
        self, url: str, body: dict[str, Any], verdict: str
    ) -> tuple[int, dict[str, Any]]:
        """The HTTP status and the answer, an object under 400 (`verdict` names its field that
        says yes or no, for the reason of a refusal)."""
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.post(url, json=body, headers=self._headers) as response,
            ):
                status = response.status
                answer = await response.json(content_type=None) if status < 500 else None
        except TimeoutError:
            raise Msg91Failed("timeout", f"no answer within {self._timeout_s}s") from None
        except (aiohttp.ClientError, ValueError) as error:
            raise Msg91Failed("unreachable", type(error).__name__) from None
        if status >= 400 or not isinstance(answer, dict):
            said = answer.get(verdict) if isinstance(answer, dict) else None
            reason = f"HTTP {status}, {verdict} {said}"
            raise Msg91Failed("answered", reason, status=status, said=said)
        return status, answer


def _refused(status: int, answer: dict[str, Any], verdict: str) -> Msg91Failed:
    said = answer.get(verdict)
    return Msg91Failed("refused", f"HTTP {status}, {verdict} {said}", status=status, said=said)
