"""FCM HTTP v1 (`POST /v1/projects/{project}/messages:send`) with per-token outcomes, and the
OAuth token endpoint (`POST /token`) a service account gets its access token from.

Error bodies come from fcm fixtures, rendered once: a client classifies them by the FcmError
detail's `errorCode`, so `set_token_state(token, "UNREGISTERED")` answers 404 with
`errorCode: UNREGISTERED`. A request costs what it costs FCM to check it: the bearer token,
the project, the message's recipient and data, the token's format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from rtmn_fakes.auth import bearer_token
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.fcm_oauth import Issuer, ServiceAccount, TokenError
from rtmn_fakes.ids import HEX, next_id
from rtmn_fakes.payloads import load

__all__ = ["FcmDelivery", "FcmFake", "ServiceAccount", "TokenState"]

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
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."
# Registration tokens are URL-safe base64 with a ':' (`<instance id>:APA91b...`); anything else
# FCM refuses as "not a valid FCM registration token". Length is not checked: tests use short ones.
TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_:\-]{1,4096}")


@dataclass(frozen=True)
class FcmDelivery:
    name: str
    target: str | None  # the message's token or fid; None for topic and condition sends
    message: dict[str, Any]
    dry_run: bool


def _error_body(state: str) -> bytes:
    status, canonical, fixture = ERRORS[state]
    body = load("fcm", fixture)
    body["error"].update(code=status, status=canonical)
    if state in MESSAGES:
        body["error"]["message"] = MESSAGES[state]
    return json.dumps(body).encode()


_ERROR_BODIES = {state: _error_body(state) for state in ERRORS}


def fcm_error(state: str) -> web.Response:
    return web.Response(
        status=ERRORS[state][0], body=_ERROR_BODIES[state], content_type="application/json"
    )


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
        # What the token endpoint says a token it hands out lives for; Google says 3599.
        self.token_lifetime_seconds = 3599
        self._issuer = Issuer()
        # FCM's ids end in a part that stays the same for one sender ("%31bd1c9631bd1c96").
        half = next_id("", 8, HEX, tag="fa")
        self._id_suffix = f"%{half}{half}"
        self._states: dict[str, TokenState] = {}
        self._delivered: list[FcmDelivery] = []

    def reset_state(self) -> None:
        self._states.clear()
        self._delivered.clear()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/projects/{project}/messages:send", self._send),
            web.post("/token", self._token),
        ]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if request.path == "/token":
            return None  # the assertion in the body is the credential
        token = bearer_token(request)
        if token != self.access_token:
            if token == self._unscoped_token():
                return google_error(403, "PERMISSION_DENIED", INSUFFICIENT_SCOPES)
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
        if status == 401:
            return {"error": {"code": 401, "message": UNAUTHENTICATED, "status": "UNAUTHENTICATED"}}
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

    def service_account(self, client_email: str | None = None) -> ServiceAccount:
        """A new service-account key whose assertions this fake's `/token` accepts."""
        email = client_email or f"firebase-adminsdk@{self.project_id}.iam.gserviceaccount.com"
        with self._lock:
            return self._issuer.new_account(email, self.url + "/token")

    @property
    def delivered(self) -> list[FcmDelivery]:
        with self._lock:
            return list(self._delivered)

    def deliveries_to(self, target: str) -> list[FcmDelivery]:
        return [d for d in self.delivered if d.target == target]

    # -- handlers -----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return bad_request("message", "Invalid JSON payload received. Missing message.")
        refused = _refusal(message)
        if refused is not None:
            return refused
        # A state applies to a registration token or an installation id (fid) alike.
        target = message.get("token") or message.get("fid")
        with self._lock:
            state = self._states.get(target, "ok") if isinstance(target, str) else "ok"
            if state != "ok":
                return fcm_error(state)
            dry_run = bool(body.get("validate_only"))
            name = f"projects/{self.project_id}/messages/{self._message_id(dry_run)}"
            self._delivered.append(FcmDelivery(name, target, message, dry_run))
        return json_response({"name": name})

    async def _token(self, request: web.Request) -> web.Response:
        form = request[RECORDED].form or {}
        try:
            with self._lock:
                grant = self._issuer.grant(form)
        except TokenError as error:
            return json_response(error.body, 400)
        token = self.access_token if grant.reaches_fcm else self._unscoped_token()
        granted = {"access_token": token, "expires_in": self.token_lifetime_seconds}
        return json_response({**granted, "token_type": "Bearer"})

    def _message_id(self, dry_run: bool) -> str:
        if dry_run:
            return "fake_message_id"  # what FCM answers for validate_only
        # Shaped like the published "0:1500415314455276%31bd1c9631bd1c96".
        return f"0:{next_id('', 16, '0123456789', tag='')}{self._id_suffix}"

    def _unscoped_token(self) -> str:
        """What a service account gets when its scopes do not include FCM's."""
        return self.access_token + "-without-fcm-scope"


def _refusal(message: dict[str, Any]) -> web.Response | None:
    """FCM's answer to a message it will not take: no recipient, non-string data, a bad token."""
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
    token = message.get("token")
    if isinstance(token, str) and not TOKEN_FORMAT.fullmatch(token):
        return fcm_error("INVALID_ARGUMENT")
    return None
