"""MSG91: SMS through a DLT-approved flow, WhatsApp through its outbound API with an approved
template. The wire calls and our deadline live once, shared with the OTP service, in
`rtmn_shared.providers.msg91`; this maps our `TextMessage` onto it.

MSG91 has no idempotency key: a crash after it accepted and before we recorded sends again on
the retry (the delivery log's lease narrows that to one UPDATE). Every refusal is treated as
MSG91 being unavailable, as the OTP service does: the next provider of the chain may take it.
"""

from __future__ import annotations

import aiohttp

from notify.providers import (
    Mode,
    TextChannel,
    TextMessage,
    TextReceipt,
    TransientSendError,
)
from rtmn_shared.providers.msg91 import Msg91Client, Msg91Failed, Msg91WhatsApp

__all__ = ["Msg91TextSender", "Msg91WhatsApp"]


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
        self._client = Msg91Client(
            session, auth_key=auth_key, timeout_s=timeout_seconds, base_url=base_url
        )
        self._flow_id, self._sender_id = flow_id, sender_id
        self._text_variable = text_variable
        self._whatsapp = whatsapp
        channels: set[TextChannel] = set()
        if flow_id:
            channels.add("sms")
        if whatsapp is not None:
            channels.add("whatsapp")
        self.channels = frozenset(channels)

    async def send(self, message: TextMessage) -> TextReceipt:
        try:
            if message.channel == "whatsapp":
                assert self._whatsapp
                request_id = await self._client.whatsapp(self._whatsapp, message.to, message.text)
            else:
                assert self._flow_id
                variables = {self._text_variable: message.text}
                request_id = await self._client.flow(
                    self._flow_id, message.to, variables, sender_id=self._sender_id
                )
        except Msg91Failed as failure:
            raise TransientSendError(_reason(failure, message.channel)) from None
        return TextReceipt(self.name, request_id)


def _reason(failure: Msg91Failed, channel: TextChannel) -> str:
    """Our error text: the status only (MSG91's body may quote the number)."""
    if failure.cause == "refused":
        field = "status" if channel == "whatsapp" else "type"
        return f"msg91 {channel}: {field} {failure.said}"
    if failure.cause == "answered":
        return f"msg91 answered {failure.status}"
    if failure.cause == "unreachable":
        return f"msg91 unreachable: {failure.reason}"
    return f"msg91: {failure.reason}"
