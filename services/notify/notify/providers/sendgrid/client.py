"""SendGrid's v3 Mail Send API over aiohttp: async, with an explicit timeout on every call.

SendGrid has no idempotency key: if we crash after it accepted a mail and before we record it,
the redelivered event sends that mail again. The delivery log's lease narrows that window to a
crash between the 202 and one UPDATE; the event id travels in custom_args so duplicates can be
recognised downstream.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from notify.providers import EmailMessage, Mode, PermanentSendError, TransientSendError

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429})


class SendGridEmailSender:
    name = "sendgrid"
    mode: Mode = "live"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str,
        from_email: str,
        from_name: str,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/v3/mail/send"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._sender = {"email": from_email, "name": from_name}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def send(self, message: EmailMessage) -> str:
        try:
            async with self._session.post(
                self._url, json=self._body(message), headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status == 202:
                    return response.headers.get("X-Message-Id", "")
                detail = _errors(await response.read())
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            raise TransientSendError(f"sendgrid unreachable: {type(error).__name__}") from None
        if status in RETRYABLE_STATUSES or status >= 500:
            raise TransientSendError(f"sendgrid answered {status}: {detail}")
        if status in (401, 403):
            log.error("sendgrid refused our credentials (%d): check SENDGRID_API_KEY", status)
        raise PermanentSendError(f"sendgrid answered {status}: {detail}")

    def _body(self, message: EmailMessage) -> dict[str, Any]:
        personalization: dict[str, Any] = {
            "to": [{"email": message.to}],
            "dynamic_template_data": dict(message.data),
        }
        if message.headers:
            personalization["headers"] = dict(message.headers)
        return {
            "personalizations": [personalization],
            "from": self._sender,
            "template_id": message.template_id,
            "custom_args": dict(message.custom_args),
        }


def _errors(raw: bytes) -> str:
    """SendGrid's `{errors: [{message, field}]}` as one line; never the whole body."""
    try:
        body = orjson.loads(raw)
        messages = [str(e.get("message", "")) for e in body.get("errors", [])]
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return raw[:200].decode("utf-8", "replace")
    return "; ".join(messages)[:500] or "no detail"
