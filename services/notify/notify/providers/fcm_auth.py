"""The access token FCM wants: a service account's, fetched off the event loop, or a static one.

The service account asks for FCM's own scope only. google-auth refreshes with its blocking
`requests` transport (120 s default timeout): on the event loop that would stall every consumer
once an hour, so the refresh runs in a worker thread with our timeout, before the token expires.
"""

from __future__ import annotations

import asyncio
from typing import Any

import google.auth.transport.requests
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError
from google.oauth2 import credentials as static
from google.oauth2 import service_account

from notify.providers import TransientSendError

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class CredentialRefresher:
    """Fetches a new access token in a worker thread, with a timeout, before it expires; one
    fetch at a time however many sends find the token stale or refused at once."""

    def __init__(self, credential: Credentials, timeout_seconds: float) -> None:
        self._credential = credential
        self._timeout = timeout_seconds
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str:
        return str(self._credential.token)

    async def ensure_valid(self) -> None:
        if self._credential.valid:
            return
        async with self._lock:
            if not self._credential.valid:
                await self._refresh()

    async def replace(self, refused: str) -> None:
        """A new token after FCM refused `refused`, unless another send already got one."""
        async with self._lock:
            if self._credential.token == refused:
                await self._refresh()

    async def _refresh(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._refresh_now), self._timeout + 1)
        except (GoogleAuthError, OSError, TimeoutError) as error:
            raise TransientSendError(f"fcm: no access token: {type(error).__name__}") from None

    def _refresh_now(self) -> None:
        transport = google.auth.transport.requests.Request()

        def request(*args: Any, **kwargs: Any) -> Any:
            return transport(*args, **{**kwargs, "timeout": self._timeout})

        self._credential.refresh(request)  # type: ignore[no-untyped-call]


def credentials_of(
    *,
    project_id: str,
    client_email: str | None,
    private_key: str | None,
    token_uri: str,
    access_token: str | None,
) -> Credentials:
    """A service account when its key is set, else a static access token (local fakes); a key
    that is not a PEM private key raises ValueError."""
    if client_email and private_key:
        info = {
            "type": "service_account",
            "project_id": project_id,
            "client_email": client_email,
            "private_key": private_key,
            "token_uri": token_uri,
        }
        account: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[SCOPE]
        )
        return account
    return static.Credentials(token=access_token)  # type: ignore[no-untyped-call]
