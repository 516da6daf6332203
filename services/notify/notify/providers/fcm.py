"""FCM through firebase-admin's async multicast (HTTP v1, one request per token, 500 a call).

The SDK keeps its HTTP client private; three things here reach into it, each for a reason:
pointing it at a local fake (`FCM_URL`), turning off its blocking 500/503 retries (our queue
retries with growing delays instead), and closing its httpx client on our loop, because
`delete_app` closes it with `asyncio.run`, which cannot run inside a running loop.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import firebase_admin
import google.auth.transport.requests
import orjson
from firebase_admin import _http_client, _retry, exceptions, messaging
from google.auth.exceptions import GoogleAuthError
from google.oauth2.credentials import Credentials

from notify.providers import (
    Mode,
    PermanentSendError,
    PushMessage,
    TokenOutcome,
    TokenResult,
    TransientSendError,
)

log = logging.getLogger(__name__)

CHUNK = 500  # FCM's limit per multicast call


class FcmPushSender:
    name = "fcm"
    mode: Mode = "live"

    def __init__(
        self,
        app: firebase_admin.App,
        *,
        url: str | None = None,
        sdk_retries: int = 0,
        timeout_seconds: int = 10,
    ) -> None:
        self._app = app
        service: Any = messaging._get_messaging_service(app)
        if url is not None:
            service._fcm_url = url.format(app.project_id)
        replaced = service._async_client
        service._async_client = _http_client.HttpxAsyncClient(
            credential=service._credential,
            timeout=timeout_seconds,
            retry_config=_retry.HttpxRetry(
                max_retries=sdk_retries, status_forcelist=[500, 503], backoff_factor=0.5
            ),
        )
        self._service = service
        self._unused_client = replaced
        self._credentials = CredentialRefresher(service._credential, timeout_seconds)

    async def send(self, message: PushMessage, tokens: Sequence[str]) -> list[TokenResult]:
        try:
            await self._credentials.ensure_valid()
        except (GoogleAuthError, OSError, TimeoutError) as error:
            raise TransientSendError(f"fcm: no access token: {type(error).__name__}") from None
        results: list[TokenResult] = []
        for start in range(0, len(tokens), CHUNK):
            chunk = list(tokens[start : start + CHUNK])
            try:
                batch = await messaging.send_each_for_multicast_async(
                    _multicast(message, chunk), app=self._app
                )
            except exceptions.FirebaseError as error:
                # Nothing of this chunk was tried (e.g. the credentials could not be refreshed).
                raise TransientSendError(f"fcm: {type(error).__name__}: {error}") from None
            except ValueError as error:
                # The SDK refused to encode the message itself: no retry can fix that.
                raise PermanentSendError(f"fcm refused the message: {error}") from None
            for token, response in zip(chunk, batch.responses, strict=True):
                if response.success:
                    results.append(TokenResult(token, "sent", message_id=response.message_id))
                else:
                    outcome, reason = classify(response.exception)
                    results.append(TokenResult(token, outcome, error=reason))
        return results

    async def aclose(self) -> None:
        await self._service._async_client.aclose()
        await self._unused_client.aclose()
        self._service.close = lambda: None  # its close() would asyncio.run() inside our loop
        firebase_admin.delete_app(self._app)


class CredentialRefresher:
    """Fetches a new access token in a worker thread, with a timeout, before it expires.

    The SDK refreshes inside its httpx auth flow with google-auth's blocking `requests`
    transport (120 s default timeout), which would stall the event loop once an hour; a token
    that is still valid when the SDK looks makes it skip that. (A 401 still makes the SDK
    refresh on the loop: FCM answers THIRD_PARTY_AUTH_ERROR with 401.)
    """

    def __init__(self, credential: Any, timeout_seconds: float) -> None:
        self._credential = credential
        self._timeout = timeout_seconds
        self._lock = asyncio.Lock()

    async def ensure_valid(self) -> None:
        if self._credential.valid:
            return
        async with self._lock:
            if not self._credential.valid:
                await asyncio.wait_for(asyncio.to_thread(self._refresh), self._timeout + 1)

    def _refresh(self) -> None:
        transport = google.auth.transport.requests.Request()

        def request(*args: Any, **kwargs: Any) -> Any:
            return transport(*args, **{**kwargs, "timeout": self._timeout})

        self._credential.refresh(request)


def classify(error: BaseException | None) -> tuple[TokenOutcome, str]:
    """What one token's error means: dead (deactivate), retry later, or a refused message."""
    reason = f"{type(error).__name__}: {error}"[:500]
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return "dead", reason
    if isinstance(error, exceptions.InvalidArgumentError):
        return ("dead" if _names_the_token(error) else "failed"), reason
    if isinstance(error, messaging.ThirdPartyAuthError):
        return "failed", reason  # our APNs/web-push credentials, not the token
    # Quota, unavailable, internal, deadline, network: the token may well be fine.
    return "retry", reason


def _names_the_token(error: exceptions.InvalidArgumentError) -> bool:
    """INVALID_ARGUMENT is also what a malformed message gets; only a bad token deactivates."""
    text = str(error).lower()
    if "registration token" in text or "invalid token" in text:
        return True
    response = error.http_response
    if response is None:
        return False
    try:
        body = orjson.loads(response.content)
        details = body["error"].get("details", [])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False
    return any(
        violation.get("field") == "message.token"
        for detail in details
        if isinstance(detail, dict)
        for violation in detail.get("fieldViolations", [])
        if isinstance(violation, dict)
    )


def _multicast(message: PushMessage, tokens: list[str]) -> messaging.MulticastMessage:
    # Apps register FCM registration tokens, which go out as `token`; firebase-admin 7.7 warns
    # that it prefers installation ids (`fids`), a different identifier our clients never send.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "MulticastMessage.tokens is deprecated", DeprecationWarning
        )
        return _build_multicast(message, tokens)


def _build_multicast(message: PushMessage, tokens: list[str]) -> messaging.MulticastMessage:
    return messaging.MulticastMessage(
        tokens=tokens,
        notification=messaging.Notification(
            title=message.title, body=message.body, image=message.image
        ),
        data=dict(message.data),
        android=messaging.AndroidConfig(priority="high"),
        apns=messaging.APNSConfig(
            payload=messaging.APNSPayload(aps=messaging.Aps(sound="default"))
        ),
    )


def credentials_of(
    *,
    project_id: str,
    client_email: str | None,
    private_key: str | None,
    token_uri: str,
    access_token: str | None,
) -> Any:
    """A service account when its key is set, else a static access token (local fakes)."""
    if client_email and private_key:
        return firebase_admin.credentials.Certificate(
            {
                "type": "service_account",
                "project_id": project_id,
                "client_email": client_email,
                "private_key": private_key,
                "token_uri": token_uri,
            }
        )
    return Credentials(token=access_token)  # type: ignore[no-untyped-call]


def open_app(
    name: str, project_id: str, credential: Any, timeout_seconds: int
) -> firebase_admin.App:
    return firebase_admin.initialize_app(
        credential, options={"projectId": project_id, "httpTimeout": timeout_seconds}, name=name
    )
