"""SendGrid v3 Mail Send (`POST /v3/mail/send`), as `SendGridAPIClient(key, host=fake.url)`
sees it, plus the signed Event Webhook side in `rtmn_fakes.sendgrid_events`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rtmn_fakes.auth import bearer_token
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load
from rtmn_fakes.sendgrid_events import (
    EventWebhookSigner,
    build_events,
    event,
    verify_event_signature,
)
from rtmn_fakes.sendgrid_rules import MAX_BYTES, Invalid, validate

__all__ = [
    "EventWebhookSigner",
    "SendGridFake",
    "SentMail",
    "build_events",
    "verify_event_signature",
]


@dataclass(frozen=True)
class SentMail:
    message_id: str
    from_email: str
    template_id: str | None
    personalizations: list[dict[str, Any]]
    custom_args: dict[str, str]
    body: dict[str, Any]

    @property
    def recipients(self) -> list[str]:
        return [to["email"] for p in self.personalizations for to in p["to"]]

    def template_data(self, email: str) -> dict[str, Any]:
        """The dynamic_template_data of the personalization that mails `email`."""
        for p in self.personalizations:
            if any(to["email"] == email for to in p["to"]):
                data: dict[str, Any] = p.get("dynamic_template_data", {})
                return data
        raise KeyError(email)

    def headers_for(self, email: str) -> dict[str, str]:
        """The mail headers `email` gets: the mail's, overridden by its personalization's."""
        for p in self.personalizations:
            if any(to["email"] == email for to in p["to"]):
                return {**self.body.get("headers", {}), **p.get("headers", {})}
        raise KeyError(email)


class SendGridFake(FakeServer):
    provider = "sendgrid"

    def __init__(
        self,
        api_key: str = "SG.fake-key-id.fake-key-secret",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key, self._clock = api_key, clock
        self.forbidden = False  # the key exists but lacks the mail.send scope
        self._sent: list[SentMail] = []

    def reset_state(self) -> None:
        self._sent.clear()
        self.forbidden = False

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v3/mail/send", self._send)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if bearer_token(request) != self.api_key:
            return json_response(load("sendgrid", "mail_send.error_401.json"), 401)
        if self.forbidden:
            return json_response(load("sendgrid", "mail_send.error_403.json"), 403)
        return None

    def fault_body(self, status: int) -> Any:
        return load("sendgrid", "mail_send.error_500.json")

    # -- test control -------------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMail]:
        with self._lock:
            return list(self._sent)

    def mails_to(self, email: str) -> list[SentMail]:
        return [m for m in self.sent if email in m.recipients]

    def wait_for_mail(self, email: str, *, timeout: float = 5.0) -> SentMail:
        self.wait_for_requests(
            1,
            "/v3/mail/send",
            where=lambda r: r.status == 202 and bool(self.mails_to(email)),
            timeout=timeout,
        )
        return self.mails_to(email)[-1]

    def build_events_for(self, message_id: str, *kinds: str, **fields: Any) -> bytes:
        """The Event Webhook batch SendGrid would post about a mail this fake accepted: one
        event per kind and recipient, carrying the mail's custom_args."""
        with self._lock:
            mail = next(m for m in self._sent if m.message_id == message_id)
        events = []
        for index, p in enumerate(mail.personalizations):
            args = {**mail.custom_args, **p.get("custom_args", {})}
            sg_message_id = f"{message_id}.filterdrecv-fake-{index}-0"
            events += [
                event(
                    kind,
                    email=to["email"],
                    sg_message_id=sg_message_id,
                    custom_args=args,
                    timestamp=int(self._clock()),
                    **fields,
                )
                for to in p["to"]
                for kind in kinds
            ]
        return json.dumps(events, separators=(",", ":")).encode() + b"\r\n"

    # -- handler ------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        recorded = request[RECORDED]
        if len(recorded.body) > MAX_BYTES:
            return json_response(load("sendgrid", "mail_send.error_413.json"), 413)
        try:
            mail = validate(recorded.json)
        except Invalid as exc:
            return json_response({"errors": [{"message": str(exc), "field": exc.field}]}, 400)
        message_id = next_id("", 22)
        with self._lock:
            self._sent.append(
                SentMail(
                    message_id,
                    mail["from"]["email"],
                    mail.get("template_id"),
                    mail["personalizations"],
                    mail.get("custom_args", {}),
                    mail,
                )
            )
        return web.Response(status=202, headers={"X-Message-Id": message_id})
