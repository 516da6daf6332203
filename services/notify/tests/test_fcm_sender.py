"""FcmPushSender on its own against the FCM fake: concurrency, result order, token refresh."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import aiohttp
import google.auth.transport.requests
import pytest
from google.auth.credentials import Credentials
from notify_testkit import unique

from notify.providers import PermanentSendError, PushMessage, TransientSendError
from notify.providers.fcm import FcmPushSender
from notify.providers.fcm_auth import CredentialRefresher, credentials_of
from rtmn_fakes.fcm import FcmFake

MESSAGE = PushMessage(title="Hi", body="There", data={"type": "test"})


@pytest.fixture(autouse=True)
def fresh_fake(fcm: FcmFake) -> Iterator[None]:
    """The module's fake, with no requests, states or faults left by another test."""
    fcm.reset()
    token, lifetime = fcm.access_token, fcm.token_lifetime_seconds
    yield
    fcm.access_token, fcm.token_lifetime_seconds = token, lifetime


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def static_token(fcm: FcmFake) -> Credentials:
    return credentials_of(
        project_id=fcm.project_id,
        client_email=None,
        private_key=None,
        token_uri="",
        access_token=fcm.access_token,
    )


def service_account(fcm: FcmFake) -> Credentials:
    account = fcm.service_account()
    return credentials_of(
        project_id=fcm.project_id,
        client_email=account.client_email,
        private_key=account.private_key,
        token_uri=account.token_uri,
        access_token=None,
    )


def fcm_sender(
    session: aiohttp.ClientSession,
    fcm: FcmFake,
    credential: Credentials | None = None,
    **options: Any,
) -> FcmPushSender:
    return FcmPushSender(
        session,
        credential or static_token(fcm),
        project_id=fcm.project_id,
        url=fcm.url + "/v1/projects/{0}/messages:send",
        **{"timeout_seconds": 5, **options},
    )


@pytest.fixture
async def sender(session: aiohttp.ClientSession, fcm: FcmFake) -> AsyncIterator[FcmPushSender]:
    sender = fcm_sender(session, fcm, concurrency=2)
    yield sender
    await sender.aclose()


async def test_tokens_go_out_two_at_a_time_with_one_result_each_in_order(
    sender: FcmPushSender, fcm: FcmFake
) -> None:
    tokens = [unique("tok") for _ in range(5)]
    fcm.set_token_state(tokens[3], "UNREGISTERED")

    results = await sender.send(MESSAGE, tokens)

    assert [r.token for r in results] == tokens
    assert [r.outcome for r in results] == ["sent", "sent", "sent", "dead", "sent"]
    assert all(len(fcm.deliveries_to(t)) == (0 if t == tokens[3] else 1) for t in tokens)
    assert results[0].message_id == fcm.deliveries_to(tokens[0])[0].name


async def test_no_more_than_the_bound_are_in_flight_at_once(fcm: FcmFake) -> None:
    in_flight, most = 0, 0

    async def started(*_: object) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)

    async def ended(*_: object) -> None:
        nonlocal in_flight
        in_flight -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    tokens = [unique("tok") for _ in range(7)]
    fcm.delay_next(len(tokens), 0.1, path="messages:send")  # slow enough to overlap
    async with aiohttp.ClientSession(trace_configs=[trace]) as traced:
        results = await fcm_sender(traced, fcm, concurrency=3).send(MESSAGE, tokens)

    assert [r.outcome for r in results] == ["sent"] * len(tokens)
    assert most == 3


async def test_the_message_goes_out_as_fcms_json_with_its_headers(
    sender: FcmPushSender, fcm: FcmFake
) -> None:
    token = unique("tok")
    message = PushMessage("Sale", "50% off", {"type": "promo"}, image="https://cdn.rez.test/a.png")

    await sender.send(message, [token])

    [request] = fcm.requests_to("messages:send")
    assert request.json == {
        "message": {
            "token": token,
            "notification": {
                "title": "Sale",
                "body": "50% off",
                "image": "https://cdn.rez.test/a.png",
            },
            "data": {"type": "promo"},
            "android": {"priority": "high"},
            "apns": {"payload": {"aps": {"sound": "default"}}},
        }
    }
    assert request.headers["Authorization"] == f"Bearer {fcm.access_token}"
    assert request.headers["X-GOOG-API-FORMAT-VERSION"] == "2"


async def test_a_message_that_cannot_be_encoded_is_refused_before_any_request(
    sender: FcmPushSender, fcm: FcmFake
) -> None:
    not_strings = PushMessage("Hi", "There", {"count": 3})  # type: ignore[dict-item]
    lone_surrogate = PushMessage("Hi \ud800", "There", {})

    for message in (not_strings, lone_surrogate):
        with pytest.raises(PermanentSendError, match="fcm refused the message"):
            await sender.send(message, [unique("tok")])
    assert fcm.requests_to("messages:send") == []


async def test_timeouts_and_cut_connections_leave_the_token_to_retry(
    session: aiohttp.ClientSession, fcm: FcmFake
) -> None:
    slow, cut = unique("tok-slow"), unique("tok-cut")
    fcm.delay_next(1, 2.0, where=lambda r: r.json["message"]["token"] == slow)
    fcm.drop_next(1, where=lambda r: r.json["message"]["token"] == cut)

    results = await fcm_sender(session, fcm, timeout_seconds=0.3).send(MESSAGE, [slow, cut])

    assert [(r.outcome, r.error) for r in results] == [
        ("retry", "fcm gave no answer in 0.3 s"),
        ("retry", "fcm unreachable: ServerDisconnectedError"),
    ]


async def test_a_refused_access_token_is_refreshed_once_and_each_token_tried_again(
    session: aiohttp.ClientSession, fcm: FcmFake
) -> None:
    sender = fcm_sender(session, fcm, service_account(fcm), concurrency=4)
    await sender.send(MESSAGE, [unique("tok")])  # the first token, fetched before the send
    tokens = [unique("tok") for _ in range(4)]
    fcm.access_token = "rotated-" + unique("token")  # revoked: ours is stale

    results = await sender.send(MESSAGE, tokens)

    assert [r.outcome for r in results] == ["sent"] * 4
    assert len(fcm.requests_to("/token")) == 2  # one refresh for the four 401s
    statuses = [r.status for r in fcm.requests_to("messages:send")[1:]]
    assert sorted(statuses) == [200] * 4 + [401] * 4


async def test_a_third_party_auth_error_is_the_devices_not_ours_so_nothing_is_refreshed(
    session: aiohttp.ClientSession, fcm: FcmFake
) -> None:
    token = unique("tok-apns")
    fcm.set_token_state(token, "THIRD_PARTY_AUTH_ERROR")
    sender = fcm_sender(session, fcm, service_account(fcm))

    [result] = await sender.send(MESSAGE, [token])

    assert (result.outcome, result.error) == (
        "failed",
        "THIRD_PARTY_AUTH_ERROR (401): Auth error from APNS or Web Push Service",
    )
    assert len(fcm.requests_to("/token")) == 1  # the token fetched before the send, no more
    assert len(fcm.requests_to("messages:send")) == 1


async def test_a_401_that_outlives_a_refresh_or_cannot_refresh_is_transient(
    session: aiohttp.ClientSession, fcm: FcmFake
) -> None:
    fcm.fail_next(2, status=401, path="messages:send")
    refreshed = fcm_sender(session, fcm, service_account(fcm))
    with pytest.raises(TransientSendError, match="refused our access token again"):
        await refreshed.send(MESSAGE, [unique("tok")])

    fcm.fail_next(1, status=401, path="messages:send")
    static = fcm_sender(session, fcm)  # FCM_ACCESS_TOKEN: nothing to refresh it with
    with pytest.raises(TransientSendError, match="no access token: RefreshError"):
        await static.send(MESSAGE, [unique("tok")])

    assert [r.status for r in fcm.requests_to("messages:send")] == [401, 401, 401]


async def test_a_token_about_to_expire_is_replaced_before_the_send(
    session: aiohttp.ClientSession, fcm: FcmFake
) -> None:
    fcm.token_lifetime_seconds = 60  # inside google-auth's refresh margin
    sender = fcm_sender(session, fcm, service_account(fcm))

    for _ in range(2):
        [result] = await sender.send(MESSAGE, [unique("tok")])
        assert result.outcome == "sent"

    assert len(fcm.requests_to("/token")) == 2
    assert [r.status for r in fcm.requests_to("messages:send")] == [200, 200]


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
