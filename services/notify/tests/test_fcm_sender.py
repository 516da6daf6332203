"""FcmPushSender on its own against the FCM fake: chunking, result order, token refresh."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import google.auth.transport.requests
import pytest
from notify_testkit import unique

from notify.providers import PushMessage
from notify.providers import fcm as fcm_provider
from notify.providers.fcm import CredentialRefresher, FcmPushSender, credentials_of, open_app
from rtmn_fakes.fcm import FcmFake

MESSAGE = PushMessage(title="Hi", body="There", data={"type": "test"})


@pytest.fixture
async def sender(fcm: FcmFake) -> AsyncIterator[FcmPushSender]:
    credential = credentials_of(
        project_id=fcm.project_id,
        client_email=None,
        private_key=None,
        token_uri="",
        access_token=fcm.access_token,
    )
    app = open_app(unique("fcm-sender"), fcm.project_id, credential, 5)
    sender = FcmPushSender(app, url=fcm.url + "/v1/projects/{0}/messages:send")
    yield sender
    await sender.aclose()


async def test_tokens_go_out_in_chunks_with_one_result_each_in_order(
    sender: FcmPushSender, fcm: FcmFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fcm_provider, "CHUNK", 2)
    tokens = [unique("tok") for _ in range(5)]
    fcm.set_token_state(tokens[3], "UNREGISTERED")

    results = await sender.send(MESSAGE, tokens)

    assert [r.token for r in results] == tokens
    assert [r.outcome for r in results] == ["sent", "sent", "sent", "dead", "sent"]
    assert all(len(fcm.deliveries_to(t)) == (0 if t == tokens[3] else 1) for t in tokens)
    assert results[0].message_id == fcm.deliveries_to(tokens[0])[0].name


class ExpiringCredential:
    """Stands in for a service account whose access token has run out."""

    def __init__(self) -> None:
        self.valid = False
        self.refreshed_on: list[str] = []

    def refresh(self, request: Any) -> None:
        self.refreshed_on.append(threading.current_thread().name)
        request(url="https://oauth2.googleapis.com/token", method="POST")
        self.valid = True


class RecordingTransport:
    calls: ClassVar[list[dict[str, Any]]] = []  # one instance per refresh; the test reads it

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


async def test_an_expired_token_is_refreshed_once_off_the_loop_with_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(google.auth.transport.requests, "Request", RecordingTransport)
    credential = ExpiringCredential()
    refresher = CredentialRefresher(credential, timeout_seconds=3)

    await asyncio.gather(*(refresher.ensure_valid() for _ in range(5)))

    assert len(credential.refreshed_on) == 1
    assert credential.refreshed_on[0] != threading.current_thread().name
    assert [c["timeout"] for c in RecordingTransport.calls] == [3]
