"""MSG91 SendSMS via Flow (`POST /api/v5/flow/`); MSG91 has no official Python SDK.

Only the success body and the `{message, type}` keys of errors are published; the HTTP
status of an error is not. The fake answers errors with 400 (401 for a bad authkey) unless
`error_http_status=200` is passed, which tests that a client reads `type`, not the status.
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

    def reset_state(self) -> None:
        self._sent.clear()  # registered flows are configuration, kept like the authkey

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v5/flow/", self._send), web.post("/api/v5/flow", self._send)]

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
