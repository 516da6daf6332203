"""FcmFake over plain HTTP as FCM HTTP v1 answers it; its token endpoint through google-auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import pytest
import requests
from google.oauth2 import service_account

from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.payloads import load

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@pytest.fixture
async def fake() -> AsyncIterator[FcmFake]:
    async with FcmFake(project_id="rtmn-push") as fake:
        yield fake


async def post(
    fake: FcmFake, body: Any, token: str | None = None, project: str = "rtmn-push"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or fake.access_token}"}
    url = f"{fake.url}/v1/projects/{project}/messages:send"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


def fcm_error_code(body: Any) -> str | None:
    return next(
        (d["errorCode"] for d in body["error"].get("details", []) if "errorCode" in d), None
    )


STATES = {
    "tok-gone": ("UNREGISTERED", 404, "NOT_FOUND"),
    "tok-other-sender": ("SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED"),
    "tok-invalid": ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT"),
    "tok-quota": ("QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED"),
    "tok-down": ("UNAVAILABLE", 503, "UNAVAILABLE"),
    "tok-broken": ("INTERNAL", 500, "INTERNAL"),
    "tok-apns": ("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED"),
}


async def test_each_token_state_answers_fcms_status_and_error_code(fake: FcmFake) -> None:
    for token, (state, _, _) in STATES.items():
        fake.set_token_state(token, state)  # type: ignore[arg-type]

    for token, (state, status, canonical) in STATES.items():
        answer = await post(fake, {"message": {"token": token, "data": {"k": "v"}}})

        assert answer[0] == status, token
        assert (answer[1]["error"]["status"], fcm_error_code(answer[1])) == (canonical, state)
    assert fake.delivered == []


async def test_a_send_is_delivered_under_a_message_name(fake: FcmFake) -> None:
    status, body = await post(fake, {"message": {"token": "tok-ok", "data": {"order_id": "o-1"}}})

    assert status == 200
    assert body["name"].startswith("projects/rtmn-push/messages/0:")
    [delivery] = fake.delivered
    assert (delivery.name, delivery.target) == (body["name"], "tok-ok")
    assert delivery.message["data"] == {"order_id": "o-1"}


async def test_states_apply_to_installation_ids_too(fake: FcmFake) -> None:
    fake.set_token_state("fid-gone", "UNREGISTERED")

    gone = await post(fake, {"message": {"fid": "fid-gone"}})
    fine = await post(fake, {"message": {"fid": "fid-ok"}})

    assert (gone[0], fine[0]) == (404, 200)
    assert [d.target for d in fake.delivered] == ["fid-ok"]


async def test_dry_run_validates_without_delivering(fake: FcmFake) -> None:
    status, body = await post(fake, {"validate_only": True, "message": {"token": "tok-1"}})

    assert (status, body) == (200, {"name": "projects/rtmn-push/messages/fake_message_id"})
    assert [d.dry_run for d in fake.delivered] == [True]


async def test_non_string_data_is_rejected_with_the_published_body(fake: FcmFake) -> None:
    status, body = await post(fake, {"message": {"token": "tok-1", "data": {"count": 12}}})

    assert status == 400
    assert body == load("fcm", "error.400.invalid_argument.bad_request_field.docs.json")
    assert fake.delivered == []


async def test_a_token_that_is_not_a_registration_token_is_invalid(fake: FcmFake) -> None:
    status, body = await post(fake, {"message": {"token": "tok 1\n"}})

    assert status == 400
    assert body == load("fcm", "error.400.invalid_argument.invalid_token.docs.json")
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


async def test_armed_failures_carry_googles_error_bodies(fake: FcmFake) -> None:
    fake.fail_next(1, status=401, path="messages:send")
    fake.fail_next(1, status=503, path="messages:send")

    expired = await post(fake, {"message": {"token": "tok-1"}})
    down = await post(fake, {"message": {"token": "tok-1"}})

    assert (expired[0], expired[1]["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert fcm_error_code(expired[1]) is None  # our credential, not a device's APNs one
    assert (down[0], fcm_error_code(down[1])) == (503, "UNAVAILABLE")


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown token state"):
        FcmFake().set_token_state("t", "EXPIRED")  # type: ignore[arg-type]


# -- the token endpoint, through google-auth's service-account credentials ---------------------


@pytest.fixture
def threaded() -> Iterator[FcmFake]:
    """google-auth refreshes with blocking requests: the fake serves from a thread of its own."""
    with FcmFake(project_id="rtmn-push") as fake:
        yield fake


def credentials(
    fake: FcmFake, *scopes: str, private_key: str | None = None, aud: str | None = None
) -> service_account.Credentials:
    account = fake.service_account()
    info = {
        "client_email": account.client_email,
        "private_key": private_key or account.private_key,
        "token_uri": account.token_uri,
    }
    return service_account.Credentials.from_service_account_info(  # type: ignore[no-any-return, no-untyped-call]
        info, scopes=list(scopes) or None, additional_claims={"aud": aud} if aud else {}
    )


def refresh(credential: service_account.Credentials) -> None:
    credential.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]


def send_with(fake: FcmFake, token: str) -> int:
    url = f"{fake.url}/v1/projects/rtmn-push/messages:send"
    headers = {"Authorization": f"Bearer {token}"}
    answer = requests.post(url, json={"message": {"token": "t"}}, headers=headers, timeout=5)
    return answer.status_code


def test_a_service_account_gets_the_fakes_access_token_for_fcms_scope(threaded: FcmFake) -> None:
    credential = credentials(threaded, FCM_SCOPE)

    refresh(credential)

    assert credential.token == threaded.access_token
    assert credential.valid
    [grant] = threaded.requests_to("/token")
    assert grant.form is not None
    assert grant.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert send_with(threaded, credential.token) == 200


def test_a_token_without_fcms_scope_is_refused_by_fcm(threaded: FcmFake) -> None:
    credential = credentials(threaded, "https://www.googleapis.com/auth/datastore")

    refresh(credential)

    assert credential.token != threaded.access_token
    assert send_with(threaded, str(credential.token)) == 403


def test_assertions_it_cannot_trust_get_no_token(threaded: FcmFake) -> None:
    with FcmFake() as stranger:
        foreign_key = stranger.service_account(f"intruder@{threaded.project_id}.iam.example")
    unscoped = credentials(threaded)
    forged = credentials(threaded, FCM_SCOPE, private_key=foreign_key.private_key)
    elsewhere = credentials(threaded, FCM_SCOPE, aud="https://sts.googleapis.com/v1/token")

    errors = []
    for credential in (unscoped, forged, elsewhere):
        with pytest.raises(google.auth.exceptions.RefreshError) as refused:
            refresh(credential)
        errors.append(refused.value.args[1]["error"])

    assert errors == ["invalid_scope", "invalid_grant", "invalid_grant"]
