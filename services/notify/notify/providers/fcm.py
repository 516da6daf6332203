"""FCM HTTP v1 over aiohttp: one `messages:send` per token, a few at a time, each with a timeout.

FCM has no batch endpoint any more, so a push to n devices is n requests on one shared session.
Nothing here retries a send: a token FCM could not take now comes back `retry` and the queue
tries it again later. The one exception is a 401 for our own access token (revoked, or expired
early): the credential is refreshed once and that token tried once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import aiohttp
import orjson
from google.auth.credentials import Credentials

from notify.providers import (
    Mode,
    PermanentSendError,
    PushMessage,
    TokenOutcome,
    TokenResult,
    TransientSendError,
)
from notify.providers.fcm_auth import CredentialRefresher

FCM_URL = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
CONCURRENCY = 16  # requests in flight for one push; a user has a handful of devices


class WireNotification(TypedDict):
    title: str
    body: str
    image: NotRequired[str]


class WireMessage(TypedDict):
    """FCM's `Message`, less its `token`: the same for every device of one push."""

    notification: WireNotification
    data: NotRequired[dict[str, str]]
    android: dict[str, str]
    apns: dict[str, Any]


class FcmPushSender:
    name = "fcm"
    mode: Mode = "live"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credential: Credentials,
        *,
        project_id: str,
        url: str | None = None,
        timeout_seconds: float = 10,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._session = session
        self._credentials = CredentialRefresher(credential, timeout_seconds)
        self._url = (url or FCM_URL).format(project_id)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._concurrency = concurrency

    async def send(self, message: PushMessage, tokens: Sequence[str]) -> list[TokenResult]:
        wire = wire_message(message)
        await self._credentials.ensure_valid()
        results: dict[int, TokenResult] = {}
        pending = iter(enumerate(tokens))

        async def worker() -> None:
            for index, token in pending:
                results[index] = await self._send_one(wire, token)

        workers = min(self._concurrency, len(tokens))
        if workers <= 1:
            await worker()  # the usual push, to one device: no task to schedule
        else:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(workers):
                        group.create_task(worker())
            except* TransientSendError as refused:
                raise refused.exceptions[0] from None
        return [results[index] for index in range(len(tokens))]

    async def aclose(self) -> None:
        """Nothing of its own to release: the session belongs to the composition root."""

    async def _send_one(self, wire: WireMessage, token: str) -> TokenResult:
        body = orjson.dumps({"message": {"token": token, **wire}})
        sent_with = self._credentials.token
        try:
            status, raw = await self._post(body, sent_with)
            if status == 401 and classify_error(status, raw).refuses_our_credential:
                await self._credentials.replace(sent_with)
                status, raw = await self._post(body, self._credentials.token)
                if status == 401 and classify_error(status, raw).refuses_our_credential:
                    raise TransientSendError("fcm refused our access token again after a refresh")
        except TimeoutError:
            silent = f"fcm gave no answer in {self._timeout.total} s"
            return TokenResult(token, "retry", error=silent)
        except aiohttp.ClientError as error:
            return TokenResult(token, "retry", error=f"fcm unreachable: {type(error).__name__}")
        return token_result(token, status, raw)

    async def _post(self, body: bytes, access_token: str) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            # Asks for the detailed errors (the FcmError detail) that the outcomes are read from.
            "X-GOOG-API-FORMAT-VERSION": "2",
        }
        async with self._session.post(
            self._url, data=body, headers=headers, timeout=self._timeout
        ) as response:
            return response.status, await response.read()


def wire_message(message: PushMessage) -> WireMessage:
    """FCM's JSON for the message; PermanentSendError if it cannot be encoded at all."""
    strings = [message.title, message.body, *message.data.keys(), *message.data.values()]
    if message.image is not None:
        strings.append(message.image)
    if not all(isinstance(s, str) for s in strings):
        raise PermanentSendError("fcm refused the message: title, body, image and data are strings")
    notification = WireNotification(title=message.title, body=message.body)
    if message.image is not None:
        notification["image"] = message.image
    wire = WireMessage(
        notification=notification,
        android={"priority": "high"},
        apns={"payload": {"aps": {"sound": "default"}}},
    )
    if message.data:
        wire["data"] = dict(message.data)
    try:
        orjson.dumps(wire)
    except orjson.JSONEncodeError as error:  # e.g. a lone surrogate in a string
        raise PermanentSendError(f"fcm refused the message: {error}") from None
    return wire


# -- FCM's answers --------------------------------------------------------------------------

DEAD = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
# A 401 too, but for our APNs or web-push credentials in Firebase, not for the token we sent.
THIRD_PARTY = frozenset({"THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR"})
CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class FcmError:
    """FCM's `{"error": {code, message, status, details}}`, read once."""

    http_status: int
    status: str  # the canonical code: the body's, else the HTTP status's
    error_code: str | None  # the FcmError detail's errorCode, when there is one
    message: str
    names_the_token: bool  # a field violation on message.token, or a message saying so

    @property
    def refuses_our_credential(self) -> bool:
        return self.http_status == 401 and self.error_code not in THIRD_PARTY

    def outcome(self) -> TokenOutcome:
        if self.error_code in DEAD:
            return "dead"
        if self.error_code in THIRD_PARTY:
            return "failed"
        if self.error_code == "QUOTA_EXCEEDED":
            return "retry"
        if self.status == "INVALID_ARGUMENT":
            # Also what a malformed message gets; only a bad token deactivates.
            return "dead" if self.names_the_token else "failed"
        # Unavailable, internal, unknown: the token may well be fine.
        return "retry"

    def reason(self) -> str:
        return f"{self.error_code or self.status} ({self.http_status}): {self.message}"[:500]


def classify_error(http_status: int, raw: bytes) -> FcmError:
    try:
        error = orjson.loads(raw)["error"]
        details = [d for d in error.get("details", []) if isinstance(d, dict)]
        message, status = str(error.get("message", "")), error.get("status")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        details, message, status = [], raw[:200].decode("utf-8", "replace"), None
    codes = [d["errorCode"] for d in details if isinstance(d.get("errorCode"), str)]
    fields = [
        violation.get("field")
        for detail in details
        if isinstance(detail.get("fieldViolations"), list)
        for violation in detail["fieldViolations"]
        if isinstance(violation, dict)
    ]
    lowered = message.lower()
    return FcmError(
        http_status=http_status,
        status=status if isinstance(status, str) else CANONICAL.get(http_status, "UNKNOWN"),
        error_code=codes[0] if codes else None,
        message=message,
        names_the_token="message.token" in fields
        or "registration token" in lowered
        or "invalid token" in lowered,
    )


def classify(http_status: int, raw: bytes) -> tuple[TokenOutcome, str]:
    """What FCM's answer to one token means: dead (deactivate), failed, or retry later."""
    error = classify_error(http_status, raw)
    return error.outcome(), error.reason()


def token_result(token: str, http_status: int, raw: bytes) -> TokenResult:
    if http_status == 200:
        try:
            name = orjson.loads(raw)["name"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            name = None
        if isinstance(name, str):
            return TokenResult(token, "sent", message_id=name)
        return TokenResult(token, "retry", error="fcm answered 200 without a message name")
    outcome, reason = classify(http_status, raw)
    return TokenResult(token, outcome, error=reason)
