"""FCM HTTP v1 (`POST /v1/projects/{project}/messages:send`) with per-token outcomes.

Error bodies come from fcm fixtures; firebase-admin classifies them by the FcmError detail's
`errorCode`, so `set_token_state(token, "UNREGISTERED")` surfaces as `UnregisteredError`.
`firebase_app()` gives a firebase_admin App pointed at the fake (see `rtmn_fakes.fcm_sdk`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from rtmn_fakes.auth import bearer_token
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import HEX, next_id
from rtmn_fakes.payloads import load

TokenState = Literal[
    "ok",
    "UNREGISTERED",
    "SENDER_ID_MISMATCH",
    "INVALID_ARGUMENT",
    "QUOTA_EXCEEDED",
    "UNAVAILABLE",
    "INTERNAL",
    "THIRD_PARTY_AUTH_ERROR",
]

# state -> (HTTP status from FCM's ErrorCode reference, canonical gRPC status, fixture).
# sdk_test bodies carry a placeholder top level; only their FcmError detail is kept as is.
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "error.unregistered_404.thirdparty_observed.json"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "error.sender_id_mismatch.sdk_test.json"),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "error.400.invalid_argument.invalid_token.docs.json",
    ),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "error.quota_exceeded.sdk_test.json"),
    "UNAVAILABLE": (503, "UNAVAILABLE", "error.unavailable_503.thirdparty_observed.json"),
    "INTERNAL": (500, "INTERNAL", "error.internal_500.thirdparty_observed.json"),
    "THIRD_PARTY_AUTH_ERROR": (
        401,
        "UNAUTHENTICATED",
        "error.third_party_auth_error.sdk_test.json",
    ),
}
MESSAGES = {
    "SENDER_ID_MISMATCH": "SenderId mismatch",
    "QUOTA_EXCEEDED": "Quota exceeded for quota metric 'Send requests'.",
    "THIRD_PARTY_AUTH_ERROR": "Auth error from APNS or Web Push Service",
}
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential."
)


@dataclass(frozen=True)
class FcmDelivery:
    name: str
    target: str | None  # the message's token or fid; None for topic and condition sends
    message: dict[str, Any]
    dry_run: bool


def fcm_error(state: str) -> web.Response:
    status, canonical, fixture = ERRORS[state]
    body = load("fcm", fixture)
    body["error"].update(code=status, status=canonical)
    if state in MESSAGES:
        body["error"]["message"] = MESSAGES[state]
    return json_response(body, status)


def bad_request(field: str, description: str) -> web.Response:
    body = load("fcm", "error.400.invalid_argument.bad_request_field.docs.json")
    body["error"]["message"] = description
    body["error"]["details"][0]["fieldViolations"] = [{"field": field, "description": description}]
    return json_response(body, 400)


def google_error(code: int, status: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message, "status": status}}, code)


class FcmFake(FakeServer):
    provider = "fcm"

    def __init__(
        self,
        project_id: str = "rtmn-test",
        access_token: str = "fake-fcm-access-token",  # noqa: S107 - the fake's own credential
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.project_id, self.access_token = project_id, access_token
        self._states: dict[str, TokenState] = {}
        self._delivered: list[FcmDelivery] = []

    def reset_state(self) -> None:
        self._states.clear()
        self._delivered.clear()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/projects/{project}/messages:send", self._send)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if bearer_token(request) != self.access_token:
            return google_error(401, "UNAUTHENTICATED", UNAUTHENTICATED)
        project = request.match_info.get("project")
        if project != self.project_id:
            resource = f"//cloudresourcemanager.googleapis.com/projects/{project}"
            message = (
                f"Permission 'cloudmessaging.messages.create' denied on resource '{resource}' "
                "(or it may not exist)."
            )
            return google_error(403, "PERMISSION_DENIED", message)
        return None

    def fault_body(self, status: int) -> Any:
        if status == 500:
            return load("fcm", "error.internal_500.thirdparty_observed.json")
        if status == 503:
            return load("fcm", "error.unavailable_503.thirdparty_observed.json")
        return {"error": {"code": status, "message": "Armed failure", "status": "UNKNOWN"}}

    # -- test control -------------------------------------------------------------------------

    def set_token_state(self, token: str, state: TokenState) -> None:
        """How FCM answers sends to `token` (a registration token or an installation id)."""
        if state != "ok" and state not in ERRORS:
            raise ValueError(f"unknown token state {state!r}")
        with self._lock:
            self._states[token] = state

    @property
    def delivered(self) -> list[FcmDelivery]:
        with self._lock:
            return list(self._delivered)

    def deliveries_to(self, target: str) -> list[FcmDelivery]:
        return [d for d in self.delivered if d.target == target]

    # -- handler ------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return bad_request("message", "Invalid JSON payload received. Missing message.")
        if not any(isinstance(message.get(k), str) for k in ("token", "fid", "topic", "condition")):
            return bad_request("message", "Recipient of the message is not set.")
        data = message.get("data", {})
        if not isinstance(data, dict):
            return bad_request("message.data", "Invalid value at 'message.data' (map)")
        for index, value in enumerate(data.values()):
            if not isinstance(value, str):
                # FCM data is a map<string, string>; the published example names the entry's index.
                where = f"message.data[{index}].value"
                problem = f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(value)}"
                return bad_request(where, problem)
        # firebase-admin 7.7 deprecates `token` for `fid`; a state applies to either.
        target = message.get("token") or message.get("fid")
        with self._lock:
            state = self._states.get(target, "ok") if isinstance(target, str) else "ok"
            if state != "ok":
                return fcm_error(state)
            dry_run = bool(body.get("validate_only"))
            name = f"projects/{self.project_id}/messages/{_message_id(dry_run)}"
            self._delivered.append(FcmDelivery(name, target, message, dry_run))
        return json_response({"name": name})


def _message_id(dry_run: bool) -> str:
    if dry_run:
        return "fake_message_id"  # what FCM answers for validate_only
    # Shaped like the published "0:1500415314455276%31bd1c9631bd1c96".
    return f"0:{next_id('', 16, '0123456789', tag='')}%{next_id('', 16, HEX, tag='fa')}"


def firebase_app(fake: FcmFake, name: str, **options: Any) -> Any:
    """`rtmn_fakes.fcm_sdk.firebase_app`, imported on use: the fake itself needs no SDK."""
    from rtmn_fakes import fcm_sdk  # noqa: PLC0415 - firebase-admin is only needed here

    return fcm_sdk.firebase_app(fake, name, **options)


async def close_firebase_app(app: Any) -> None:
    from rtmn_fakes import fcm_sdk  # noqa: PLC0415 - firebase-admin is only needed here

    await fcm_sdk.close_firebase_app(app)
