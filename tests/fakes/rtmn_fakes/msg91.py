"""MSG91 SendSMS via Flow (`POST /api/v5/flow/`) and WhatsApp template messages
(`POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`); MSG91 has no official Python SDK.

Only the success body and the `{message, type}` keys of errors are published; the HTTP
status of an error is not. The fake answers errors with 400 (401 for a bad authkey) unless
`error_http_status=200` is passed, which tests that a client reads `type`, not the status.

WhatsApp: only third-party samples exist (fixtures/README.md). The fake accepts a template
message from the account's integrated number (once any is registered) with an approved
template (once any is registered) whose `body_N` variables are all given, answers
`{status: success, hasError: false, request_id}`, and refuses anything else with 400
`{status: fail, hasError: true, errors}`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import HEX, next_id
from rtmn_fakes.payloads import load

MOBILE = re.compile(r"^[1-9]\d{9,14}$")  # international format with country code, no '+'
DESCRIPTIONS = {"1": "DELIVERED", "2": "FAILED", "9": "NDNC", "16": "REJECTED", "17": "BLOCKED",
                "25": "REJECTED"}  # fmt: skip
OPTIONS = frozenset({"flow_id", "sender", "recipients", "route", "unicode", "schtime", "short_url"})


@dataclass(frozen=True)
class Msg91Send:
    request_id: str
    flow_id: str
    sender: str | None
    mobiles: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Msg91WhatsAppSend:
    request_id: str
    integrated_number: str
    template: str
    language: str
    to: str  # digits, country code first
    components: dict[str, str] = field(default_factory=dict)  # body_1 -> its value


@dataclass(frozen=True)
class _Flow:
    variables: frozenset[str]
    sender: str | None


class Msg91Error(Exception):
    pass


class Msg91Fake(FakeServer):
    provider = "msg91"

    def __init__(
        self,
        authkey: str = "fake-msg91-authkey",
        *,
        error_http_status: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.authkey, self._error_status = authkey, error_http_status
        self._flows: dict[str, _Flow] = {}
        self._sent: list[Msg91Send] = []
        self._whatsapp_numbers: set[str] = set()
        self._whatsapp_templates: dict[str, int] = {}
        self._whatsapp_sent: list[Msg91WhatsAppSend] = []

    def reset_state(self) -> None:
        # registered flows, numbers and templates are configuration, kept like the authkey
        self._sent.clear()
        self._whatsapp_sent.clear()

    def routes(self) -> list[web.RouteDef]:
        whatsapp = "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
        return [
            web.post("/api/v5/flow/", self._send),
            web.post("/api/v5/flow", self._send),
            web.post(whatsapp, self._whatsapp),
            web.post(whatsapp.rstrip("/"), self._whatsapp),
        ]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if request.headers.get("authkey") == self.authkey:
            return None
        return self._error("Authentication failure", 401)

    def fault_body(self, status: int) -> Any:
        return {"type": "error", "message": "Internal server error"}

    # -- test control -------------------------------------------------------------------------

    def register_flow(
        self, flow_id: str, variables: Iterable[str] = (), *, sender: str | None = None
    ) -> None:
        """A DLT-approved flow: once any is registered, unknown flow ids are refused and each
        recipient must carry every variable the flow names."""
        with self._lock:
            self._flows[flow_id] = _Flow(frozenset(variables), sender)

    def register_whatsapp_number(self, number: str) -> None:
        """A WhatsApp number integrated with the account; once any is, others are refused."""
        with self._lock:
            self._whatsapp_numbers.add(number)

    def register_whatsapp_template(self, name: str, body_variables: int = 1) -> None:
        """An approved template and how many body variables (`body_1`...) it needs; once any
        is registered, unknown names are refused."""
        with self._lock:
            self._whatsapp_templates[name] = body_variables

    @property
    def whatsapp_sent(self) -> list[Msg91WhatsAppSend]:
        with self._lock:
            return list(self._whatsapp_sent)

    def whatsapp_to(self, mobile: str) -> list[Msg91WhatsAppSend]:
        return [s for s in self.whatsapp_sent if s.to == mobile]

    @property
    def sent(self) -> list[Msg91Send]:
        with self._lock:
            return list(self._sent)

    def sends_to(self, mobile: str) -> list[Msg91Send]:
        return [s for s in self.sent if mobile in s.mobiles.split(",")]

    def wait_for_send(self, mobile: str, *, timeout: float = 5.0) -> Msg91Send:
        self.wait_for_requests(
            1,
            "/flow/",
            where=lambda r: r.status == 200 and bool(self.sends_to(mobile)),
            timeout=timeout,
        )
        return self.sends_to(mobile)[-1]

    def delivery_report(self, request_id: str, status: str = "1") -> dict[str, str]:
        """The form MSG91 posts to the account's webhook (v2) for one send: status "1" delivered,
        "2" failed, "9" NDNC, "16"/"25" rejected, "17" blocked. MSG91 signs nothing."""
        with self._lock:
            send = next(s for s in self._sent if s.request_id == request_id)
        outer = load("msg91", "webhook.v2.delivery_report.docs.json")
        [request] = json.loads(outer["data"])
        [report] = request["report"]
        report.update(
            date=time.strftime("%Y-%m-%d %H:%M:%S"),
            number=send.mobiles,
            status=status,
            desc=DESCRIPTIONS.get(status, "PENDING"),
            failedReason="" if status == "1" else DESCRIPTIONS.get(status, ""),
        )
        request.update(requestId=request_id, senderId=send.sender or "", report=[report])
        return {"data": json.dumps([request])}

    # -- handler ------------------------------------------------------------------------------

    def _error(self, message: str, status: int = 400) -> web.Response:
        return json_response({"type": "error", "message": message}, self._error_status or status)

    async def _send(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json
        try:
            sends = self._validate(body)
        except Msg91Error as exc:
            return self._error(str(exc))
        request_id = next_id("", 24, HEX, tag="")
        with self._lock:
            self._sent.extend(
                Msg91Send(request_id, body["flow_id"], body.get("sender"), mobiles, variables)
                for mobiles, variables in sends
            )
        answer = load("msg91", "flow.send.response.success.json")
        answer["message"] = request_id
        return json_response(answer)

    async def _whatsapp(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json
        try:
            number, template, language, recipients = self._whatsapp_message(body)
        except Msg91Error as exc:
            failure = {"status": "fail", "hasError": True, "data": None, "errors": str(exc)}
            return json_response(failure, self._error_status or 400)
        request_id = next_id("", 24, HEX, tag="")
        with self._lock:
            self._whatsapp_sent.extend(
                Msg91WhatsAppSend(request_id, number, template, language, to, components)
                for to, components in recipients
            )
        answer = load("msg91", "whatsapp.outbound.bulk.response.success.thirdparty_observed.json")
        answer["request_id"] = request_id
        return json_response(answer)

    def _whatsapp_message(
        self, body: Any
    ) -> tuple[str, str, str, list[tuple[str, dict[str, str]]]]:
        if not isinstance(body, dict):
            raise Msg91Error("Invalid JSON body")
        number = body.get("integrated_number")
        with self._lock:
            numbers, templates = set(self._whatsapp_numbers), dict(self._whatsapp_templates)
        if not isinstance(number, str) or not MOBILE.match(number):
            raise Msg91Error("integrated_number is required")
        if numbers and number not in numbers:
            raise Msg91Error("Integrated number not found")
        if body.get("content_type") != "template":
            raise Msg91Error("content_type must be template")
        payload = body.get("payload")
        template = payload.get("template") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or payload.get("type") != "template":
            raise Msg91Error("payload.type must be template")
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            raise Msg91Error("template name is required")
        name = template["name"]
        if templates and name not in templates:
            raise Msg91Error("Template not found")
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            raise Msg91Error("template language code is required")
        recipients = template.get("to_and_components")
        if not isinstance(recipients, list) or not recipients:
            raise Msg91Error("to_and_components is required")
        needed = {f"body_{i}" for i in range(1, templates.get(name, 0) + 1)}
        sends = [self._whatsapp_recipient(r, needed) for r in recipients]
        return number, name, language["code"], [s for group in sends for s in group]

    @staticmethod
    def _whatsapp_recipient(recipient: Any, needed: set[str]) -> list[tuple[str, dict[str, str]]]:
        if not isinstance(recipient, dict) or not isinstance(recipient.get("to"), list):
            raise Msg91Error("Each to_and_components entry needs a to list")
        components = recipient.get("components", {})
        if not isinstance(components, dict):
            raise Msg91Error("components must be an object")
        values: dict[str, str] = {}
        for key, component in components.items():
            ok = isinstance(component, dict) and isinstance(component.get("value"), str)
            if not ok or component.get("type") != "text":
                raise Msg91Error(f"Component {key} needs a type and a string value")
            values[key] = component["value"]
        missing = sorted(needed - set(values))
        if missing:
            raise Msg91Error(f"Missing component {missing[0]}")
        tos = [str(to) for to in recipient["to"]]
        if not tos or not all(MOBILE.match(to) for to in tos):
            raise Msg91Error("Invalid mobile number")
        return [(to, values) for to in tos]

    def _validate(self, body: Any) -> list[tuple[str, dict[str, str]]]:
        if not isinstance(body, dict):
            raise Msg91Error("Invalid JSON body")
        unknown = sorted(set(body) - OPTIONS)
        if unknown:
            raise Msg91Error(f"Unknown parameter {unknown[0]}")
        flow_id = body.get("flow_id")
        if not isinstance(flow_id, str) or not flow_id:
            raise Msg91Error("Flow ID is missing")
        with self._lock:
            flow = self._flows.get(flow_id)
            if self._flows and flow is None:
                raise Msg91Error("Invalid flow id")
        if flow is not None and flow.sender is not None and body.get("sender") != flow.sender:
            raise Msg91Error("Sender ID does not match the flow")
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            raise Msg91Error("Recipients are missing")
        return [self._recipient(r, flow) for r in recipients]

    @staticmethod
    def _recipient(recipient: Any, flow: _Flow | None) -> tuple[str, dict[str, str]]:
        if not isinstance(recipient, dict):
            raise Msg91Error("Each recipient must be an object")
        mobiles = str(recipient.get("mobiles", ""))
        if not all(MOBILE.match(m) for m in mobiles.split(",")):
            raise Msg91Error(f"Invalid mobile number {mobiles}")
        variables = {k: v for k, v in recipient.items() if k != "mobiles"}
        for name, value in variables.items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise Msg91Error(f"Variable {name} must be a string")
        missing = sorted((flow.variables if flow else frozenset()) - set(variables))
        if missing:
            raise Msg91Error(f"Missing variable {missing[0]}")
        return mobiles, {k: str(v) for k, v in variables.items()}
