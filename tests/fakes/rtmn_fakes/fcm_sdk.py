"""firebase-admin pointed at an FcmFake, for tests of code that sends through the SDK.

firebase-admin has no base-URL option: the messaging service copies the class attribute
`_MessagingService.FCM_URL` when an App first uses it, so the URL is swapped only while this
App's service is built. The SDK retries 500/503 four times with 1-2-4 s backoff; tests get the
same retries without the waiting (`retry_backoff=0.0`), so expect 1 + max_retries requests.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import firebase_admin
import google.auth.credentials
from firebase_admin import _http_client, _retry, messaging

from rtmn_fakes.fcm import FcmFake

_url_swap = threading.Lock()


class FakeAccessToken(google.auth.credentials.Credentials):
    """The fake's current access token; `refresh()` re-reads it without network, as a service
    account would fetch a new one. A static token cannot refresh, and firebase-admin refreshes
    on every 401 (THIRD_PARTY_AUTH_ERROR included), so with one the whole batch would fail."""

    def __init__(self, fake: FcmFake) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._fake = fake
        self.token = fake.access_token
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = self._fake.access_token


def firebase_app(
    fake: FcmFake,
    name: str,
    *,
    max_retries: int = 4,
    retry_backoff: float = 0.0,
    http_timeout: float = 5.0,
) -> Any:
    """A new firebase_admin App named `name` whose messaging goes to `fake`."""
    credential = FakeAccessToken(fake)
    options = {"projectId": fake.project_id, "httpTimeout": http_timeout}
    app = firebase_admin.initialize_app(credential, options, name=name)
    with _url_swap:
        original = messaging._MessagingService.FCM_URL
        messaging._MessagingService.FCM_URL = fake.url + "/v1/projects/{0}/messages:send"
        try:
            service = messaging._get_messaging_service(app)
        finally:
            messaging._MessagingService.FCM_URL = original
    retry = _retry.HttpxRetry(
        max_retries=max_retries, status_forcelist=[500, 503], backoff_factor=retry_backoff
    )
    service._async_client = _http_client.HttpxAsyncClient(
        credential=service._credential, timeout=http_timeout, retry_config=retry
    )
    return app


async def close_firebase_app(app: Any) -> None:
    """Close the App's httpx client on this loop, then delete the App.

    `firebase_admin.delete_app` closes it with `asyncio.run`, which fails inside a running
    loop; run from a worker thread after the close here, that second close is a no-op.
    """
    await messaging._get_messaging_service(app)._async_client.aclose()
    await asyncio.to_thread(firebase_admin.delete_app, app)
