"""firebase-admin's send_each_for_multicast_async against FcmFake, per-token outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from firebase_admin import exceptions, messaging

from rtmn_fakes.fcm import FcmFake, close_firebase_app, firebase_app
from rtmn_fakes.payloads import load


@pytest.fixture
async def fake() -> AsyncIterator[FcmFake]:
    async with FcmFake(project_id="rtmn-push") as fake:
        yield fake


@pytest.fixture
async def app(fake: FcmFake, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    app = firebase_app(fake, f"fcm-{request.node.name}")
    yield app
    await close_firebase_app(app)


STATES = {
    "tok-ok": ("ok", None),
    "tok-gone": ("UNREGISTERED", messaging.UnregisteredError),
    "tok-other-sender": ("SENDER_ID_MISMATCH", messaging.SenderIdMismatchError),
    "tok-invalid": ("INVALID_ARGUMENT", exceptions.InvalidArgumentError),
    "tok-quota": ("QUOTA_EXCEEDED", messaging.QuotaExceededError),
    "tok-down": ("UNAVAILABLE", exceptions.UnavailableError),
    "tok-broken": ("INTERNAL", exceptions.InternalError),
    "tok-apns": ("THIRD_PARTY_AUTH_ERROR", messaging.ThirdPartyAuthError),
}


async def test_each_token_state_maps_to_the_sdks_exception(fake: FcmFake, app: Any) -> None:
    for token, (state, _) in STATES.items():
        fake.set_token_state(token, state)  # type: ignore[arg-type]
    multicast = messaging.MulticastMessage(fids=list(STATES), data={"order_id": "ord-1"})

    batch = await messaging.send_each_for_multicast_async(multicast, app=app)

    assert (batch.success_count, batch.failure_count) == (1, 7)
    for token, response in zip(STATES, batch.responses, strict=True):
        expected = STATES[token][1]
        if expected is None:
            assert response.message_id.startswith("projects/rtmn-push/messages/0:")
        else:
            assert type(response.exception) is expected, token
    [delivery] = fake.delivered
    assert (delivery.target, delivery.message["data"]) == ("tok-ok", {"order_id": "ord-1"})


# firebase-admin 7.7 deprecates registration tokens for installation ids (fids); code that
# still holds device tokens gets this warning, which pytest turns into an error.
@pytest.mark.filterwarnings("ignore:MulticastMessage.tokens is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")
async def test_deprecated_tokens_reach_the_fake_as_token(fake: FcmFake, app: Any) -> None:
    fake.set_token_state("tok-gone", "UNREGISTERED")
    multicast = messaging.MulticastMessage(tokens=["tok-gone", "tok-ok"])

    batch = await messaging.send_each_for_multicast_async(multicast, app=app)

    assert isinstance(batch.responses[0].exception, messaging.UnregisteredError)
    assert fake.requests_to("messages:send")[1].json["message"]["token"] == "tok-ok"
    assert [d.target for d in fake.delivered] == ["tok-ok"]


async def test_the_sdk_retries_500_and_503_so_those_tokens_see_extra_requests(
    fake: FcmFake, app: Any
) -> None:
    fake.set_token_state("tok-down", "UNAVAILABLE")
    multicast = messaging.MulticastMessage(fids=["tok-down", "tok-ok"])

    await messaging.send_each_for_multicast_async(multicast, app=app)

    sends = fake.requests_to("messages:send")
    to_down = [r for r in sends if r.json["message"]["fid"] == "tok-down"]
    assert len(to_down) == 5  # first try + firebase-admin's 4 retries
    assert len(sends) == 6


async def test_an_armed_503_is_absorbed_by_the_sdks_retry(fake: FcmFake, app: Any) -> None:
    fake.fail_next(1, status=503, path="messages:send")

    message_id = await messaging.send_each_async([messaging.Message(fid="tok-1")], app=app)

    assert message_id.success_count == 1
    assert [r.status for r in fake.requests] == [503, 200]


async def test_dry_run_validates_without_delivering(fake: FcmFake, app: Any) -> None:
    multicast = messaging.MulticastMessage(fids=["tok-1"], data={"k": "v"})

    batch = await messaging.send_each_for_multicast_async(multicast, dry_run=True, app=app)

    assert batch.responses[0].message_id == "projects/rtmn-push/messages/fake_message_id"
    assert [d.dry_run for d in fake.delivered] == [True]
    assert fake.requests[0].json["validate_only"] is True


async def post(
    fake: FcmFake, body: Any, token: str | None = None, project: str = "rtmn-push"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or fake.access_token}"}
    url = f"{fake.url}/v1/projects/{project}/messages:send"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_non_string_data_is_rejected_with_the_published_body(fake: FcmFake) -> None:
    status, body = await post(fake, {"message": {"token": "tok-1", "data": {"count": 12}}})

    assert status == 400
    assert body == load("fcm", "error.400.invalid_argument.bad_request_field.docs.json")
    assert fake.delivered == []


async def test_missing_recipient_bad_token_and_foreign_project_are_rejected(fake: FcmFake) -> None:
    no_target = await post(fake, {"message": {"data": {"k": "v"}}})
    bad_token = await post(fake, {"message": {"token": "tok-1"}}, token="expired")
    other_project = await post(fake, {"message": {"token": "tok-1"}}, project="someone-else")

    assert (no_target[0], no_target[1]["error"]["message"]) == (
        400,
        "Recipient of the message is not set.",
    )
    assert (bad_token[0], bad_token[1]["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert (other_project[0], other_project[1]["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert fake.delivered == []


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown token state"):
        FcmFake().set_token_state("t", "EXPIRED")  # type: ignore[arg-type]


async def test_401s_go_through_the_sdks_refresh_and_retry(fake: FcmFake, app: Any) -> None:
    fake.set_token_state("tok-apns", "THIRD_PARTY_AUTH_ERROR")
    fake.access_token = "rotated-token"  # the App's token is now stale

    batch = await messaging.send_each_async(
        [messaging.Message(fid="tok-ok"), messaging.Message(fid="tok-apns")], app=app
    )

    assert batch.responses[0].success
    assert isinstance(batch.responses[1].exception, messaging.ThirdPartyAuthError)
    to_apns = [r for r in fake.requests if r.json["message"]["fid"] == "tok-apns"]
    assert [r.status for r in to_apns] == [401, 401, 401]  # stale token, then 2 refreshed tries
    assert to_apns[-1].headers["Authorization"] == "Bearer rotated-token"
