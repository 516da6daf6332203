"""Twilio Programmable Messaging and Voice (REST API 2010-04-01), as `twilio.rest.Client` sees
it once `client.api.base_url = fake.url`: SMS, WhatsApp (`whatsapp:+E164` addresses, approved
Content templates) and outbound calls with inline TwiML.

Every accepted SMS or WhatsApp message lands in `fake.sent_messages`, every call in `fake.calls`,
so an OTP test reads the code it was sent; `status_callback` builds the signed delivery receipt
Twilio would post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rtmn_fakes.auth import basic_credentials
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import HEX, next_id
from rtmn_fakes.payloads import load

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
WHATSAPP = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "To number: {to}, is not a mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21213: "No 'From' number is specified",
    21656: "The ContentVariables Parameter is invalid.",
    63016: "Failed to send freeform message because you are outside the allowed window. "
    "Please use a Template.",
    63007: "Twilio could not find a Channel with the specified From address",
    12100: "Document parse failure",
}


@dataclass(frozen=True)
class SentSms:
    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    to: str
    from_: str
    twiml: str
    status_callback: str | None

    def spoken(self) -> list[str]:
        """The texts of the TwiML's `<Say>` verbs, in order."""
        return [say.text or "" for say in ET.fromstring(self.twiml).iter("Say")]  # noqa: S314

    def say_languages(self) -> set[str | None]:
        return {say.get("language") for say in ET.fromstring(self.twiml).iter("Say")}  # noqa: S314


def twilio_error(code: int, status: int = 400, **values: str) -> web.Response:
    body = load("twilio", "error.21211.docs.json")  # the full published shape
    body.update(
        code=code,
        message=MESSAGES[code].format(**values),
        more_info=f"https://www.twilio.com/docs/errors/{code}",
        status=status,
    )
    return json_response(body, status)


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """X-Twilio-Signature of a callback Twilio posts to `url` with form `params`."""
    signed = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def segments(body: str) -> int:
    single, multi = (160, 153) if set(body) <= GSM7 else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


class TwilioFake(FakeServer):
    provider = "twilio"

    def __init__(
        self,
        account_sid: str = "AC" + "fa" * 16,
        auth_token: str = "fake_auth_token",  # noqa: S107 - the fake's own test credential
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.account_sid, self.auth_token, self._clock = account_sid, auth_token, clock
        self.messages: dict[str, dict[str, Any]] = {}
        self._sent: list[SentSms] = []
        self._rejected: dict[str, int] = {}
        self._calls: list[PlacedCall] = []
        self._whatsapp_senders: set[str] = set()
        self._contents: dict[str, frozenset[str]] = {}

    def reset_state(self) -> None:
        self.messages.clear()
        self._sent.clear()
        self._rejected.clear()
        self._calls.clear()  # WhatsApp senders and templates are configuration: kept

    def routes(self) -> list[web.RouteDef]:
        base = "/2010-04-01/Accounts/{account}/Messages"
        calls = "/2010-04-01/Accounts/{account}/Calls.json"
        return [
            web.post(base + ".json", self._create),
            web.get(base + "/{sid}.json", self._fetch),
            web.post(calls, self._call),
        ]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if basic_credentials(request) != (self.account_sid, self.auth_token):
            return twilio_error(20003, 401)
        if request.match_info.get("account") != self.account_sid:
            return twilio_error(20404, 404)
        return None

    def fault_body(self, status: int) -> Any:
        return {
            "code": 20500,
            "message": "An internal server error has occurred",
            "more_info": "https://www.twilio.com/docs/errors/20500",
            "status": status,
        }

    # -- test control -------------------------------------------------------------------------

    @property
    def sent_messages(self) -> list[SentSms]:
        with self._lock:
            return list(self._sent)

    def messages_to(self, number: str) -> list[SentSms]:
        return [m for m in self.sent_messages if m.to == number]

    @property
    def calls(self) -> list[PlacedCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, number: str) -> list[PlacedCall]:
        return [c for c in self.calls if c.to == number]

    def register_whatsapp_sender(self, number: str) -> None:
        """A WhatsApp-enabled sender of this account; other `whatsapp:` From addresses: 63007."""
        with self._lock:
            self._whatsapp_senders.add(number)

    def register_content(self, content_sid: str, variables: tuple[str, ...] = ("1",)) -> None:
        """An approved Content template and the placeholders it needs (`{{1}}`...)."""
        with self._lock:
            self._contents[content_sid] = frozenset(variables)

    def wait_for_message(self, to: str, *, timeout: float = 5.0) -> SentSms:
        """Block until an SMS to `to` was accepted (sent from another thread or loop)."""
        self.wait_for_requests(
            1,
            "/Messages.json",
            where=lambda r: (r.form or {}).get("To") == to and r.status == 201,
            timeout=timeout,
        )
        return self.messages_to(to)[-1]

    def reject_number(self, to: str, code: int = 21614) -> None:
        """Answer sends to `to` with `code`: 21614 not a mobile, 21610 unsubscribed (STOP)."""
        if code not in MESSAGES:
            raise ValueError(f"no message known for Twilio error {code}")
        with self._lock:
            self._rejected[to] = code

    def status_callback(
        self, sid: str, status: str = "delivered", error_code: int | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """What Twilio posts to the message's StatusCallback: (url, form params, headers)."""
        with self._lock:
            sent = next(m for m in self._sent if m.sid == sid)
        if sent.status_callback is None:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": sent.to,
            "From": sent.from_ or "",
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = twilio_signature(sent.status_callback, params, self.auth_token)
        return sent.status_callback, params, {"X-Twilio-Signature": signature}

    def call_status_callback(
        self, sid: str, status: str = "completed"
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """What Twilio posts to a call's StatusCallback when it ends: completed, busy, no-answer,
        failed or canceled (url, form params, headers)."""
        with self._lock:
            placed = next(c for c in self._calls if c.sid == sid)
        if placed.status_callback is None:
            raise ValueError(f"call {sid} was placed without a StatusCallback")
        params = {
            "CallSid": sid,
            "AccountSid": self.account_sid,
            "CallStatus": status,
            "To": placed.to,
            "From": placed.from_,
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        signature = twilio_signature(placed.status_callback, params, self.auth_token)
        return placed.status_callback, params, {"X-Twilio-Signature": signature}

    # -- handlers -----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        form = request[RECORDED].form or {}
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        invalid = _invalid(form) or self._invalid_whatsapp(form)
        if invalid is not None:
            return invalid
        content_sid = form.get("ContentSid")
        variables = json.loads(form["ContentVariables"]) if "ContentVariables" in form else None
        with self._lock:
            number = to.removeprefix("whatsapp:")
            if number in self._rejected:
                return twilio_error(self._rejected[number], to=to)
            message = self._message(to, body, sender, service)
            self.messages[message["sid"]] = message
            self._sent.append(
                SentSms(message["sid"], to, body, sender, service, form.get("StatusCallback"),
                        content_sid, variables)
            )  # fmt: skip
        return json_response(message, 201)

    def _invalid_whatsapp(self, form: Mapping[str, str]) -> web.Response | None:
        """WhatsApp: both ends `whatsapp:`, a registered sender, and outside a 24-hour session
        only an approved template with every placeholder filled. (Twilio reports a freeform
        message as failed later, with 63016; the fake refuses it at once so tests see it.)"""
        to, sender = form.get("To", ""), form.get("From", "")
        if not to.startswith("whatsapp:"):
            return None
        with self._lock:
            known_sender = sender.removeprefix("whatsapp:") in self._whatsapp_senders
            needed = self._contents.get(form.get("ContentSid", ""))
        if not WHATSAPP.match(sender) or not known_sender:
            return twilio_error(63007)
        if needed is None:
            return twilio_error(63016)
        try:
            variables = json.loads(form.get("ContentVariables", "{}"))
        except ValueError:
            return twilio_error(21656)
        if not isinstance(variables, dict) or not needed <= set(variables):
            return twilio_error(21656)
        return None

    async def _call(self, request: web.Request) -> web.Response:
        form = request[RECORDED].form or {}
        to, sender, twiml = form.get("To", ""), form.get("From", ""), form.get("Twiml", "")
        checks = [
            (not to, 21201),
            (not E164.match(to), 21211),
            (not sender, 21213),
            (not (twiml or form.get("Url") or form.get("ApplicationSid")), 21205),
            (bool(twiml) and not _is_twiml(twiml), 12100),
        ]
        for failed, code in checks:
            if failed:
                return twilio_error(code, to=to, from_=sender)
        with self._lock:
            if to in self._rejected:
                return twilio_error(self._rejected[to], to=to)
            sid = next_id("CA", 32, HEX, tag="fa")
            self._calls.append(PlacedCall(sid, to, sender, twiml, form.get("StatusCallback")))
        call = load("twilio", "calls.create.201.twiml.docs.json")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}"
        call.update(sid=sid, account_sid=self.account_sid, to=to, status="queued",
                    direction="outbound-api", duration=None, start_time=None, end_time=None,
                    price=None, uri=f"{uri}.json")  # fmt: skip
        call["from"] = sender
        return json_response(call, 201)

    def _message(self, to: str, body: str, sender: str | None, service: str | None) -> Any:
        message = load("twilio", "messages.create.201.queued.sdk_test.json")
        sid = next_id("SM", 32, HEX, tag="fa")
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(self._clock()))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        message.update(
            sid=sid,
            account_sid=self.account_sid,
            to=to,
            body=body,
            messaging_service_sid=service,
            num_segments=str(segments(body)),
            date_created=now,
            date_updated=now,
            date_sent=None,
            # With a Messaging Service, Twilio picks the sender later and reports "accepted".
            status="accepted" if service else "queued",
            uri=f"{uri}.json",
            subresource_uris={"media": f"{uri}/Media.json"},
        )
        message["from"] = sender  # null until Twilio picks one from the Messaging Service
        return message

    async def _fetch(self, request: web.Request) -> web.Response:
        with self._lock:
            message = self.messages.get(request.match_info["sid"])
            return json_response(message) if message else twilio_error(20404, 404)


def _is_twiml(twiml: str) -> bool:
    try:
        return ET.fromstring(twiml).tag == "Response"  # noqa: S314
    except ET.ParseError:
        return False


def _invalid(form: Mapping[str, str]) -> web.Response | None:
    """Twilio's answer to a malformed send, checked in Twilio's order; None if it is fine."""
    to, body = form.get("To", ""), form.get("Body", "")
    sender, service = form.get("From", ""), form.get("MessagingServiceSid")
    number, from_number = to.removeprefix("whatsapp:"), sender.removeprefix("whatsapp:")
    checks = [
        (not to, 21604),
        (not E164.match(number), 21211),
        (not sender and not service, 21603),
        (
            bool(sender) and not (E164.match(from_number) or ALPHANUMERIC_SENDER.match(sender)),
            21212,
        ),
        (not body and "MediaUrl" not in form and "ContentSid" not in form, 21602),
        (len(body) > 1600, 21617),
    ]
    for failed, code in checks:
        if failed:
            return twilio_error(code, to=to, from_=sender)
    return None
