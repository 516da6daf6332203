"""A bad provider setting stops start-up with one line naming it; none at all means sandboxes."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from notify_testkit import unique

from notify.app import build_app, provider_modes, push_sender
from notify.providers import PushMessage
from notify.settings import Settings
from rtmn_fakes.fcm import FcmFake
from rtmn_shared.settings import SettingsError, load_settings

KEY = "-----BEGIN PUBLIC KEY-----\nnot-checked-here-but-long-enough\n-----END PUBLIC KEY-----"


def settings(**values: object) -> Settings:
    return Settings(jwt_public_key=KEY, **values)  # type: ignore[arg-type]


async def test_a_webhook_key_that_is_not_p256_der_is_refused_at_start() -> None:
    async with AsyncExitStack() as stack:
        with pytest.raises(SettingsError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
            await build_app(settings(sendgrid_webhook_public_key="bm90IGEga2V5"), stack)


async def test_a_firebase_key_that_is_not_pem_is_refused_at_start() -> None:
    bad = settings(
        firebase_project_id="rez",
        firebase_client_email="fcm@rez.iam.gserviceaccount.com",
        firebase_private_key="-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----",
    )
    async with AsyncExitStack() as stack:
        with pytest.raises(SettingsError, match="FIREBASE_PRIVATE_KEY"):
            push_sender(bad, stack)


def test_missing_credentials_mean_sandboxes_and_escaped_newlines_are_restored() -> None:
    assert provider_modes(settings()) == {"sendgrid": "sandbox", "fcm": "sandbox"}
    live = settings(
        sendgrid_api_key="SG.x",
        firebase_project_id="rez",
        firebase_client_email="fcm@rez.iam.gserviceaccount.com",
        firebase_private_key="line1\\nline2",
    )
    assert provider_modes(live) == {"sendgrid": "live", "fcm": "live"}
    assert live.firebase_private_key is not None
    assert live.firebase_private_key.get_secret_value() == "line1\nline2"
    assert "line1" not in repr(live)


def key_file(tmp_path: Path, fcm: FcmFake, **changes: object) -> Path:
    """The service account's JSON key file, as Google's console downloads it."""
    account = fcm.service_account()
    content = {
        "type": "service_account",
        "project_id": fcm.project_id,
        "private_key_id": "k1",
        "private_key": account.private_key,
        "client_email": account.client_email,
        "token_uri": account.token_uri,
        **changes,
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({k: v for k, v in content.items() if v is not None}))
    return path


@pytest.mark.parametrize("name", ["FIREBASE_CREDENTIALS_FILE", "GOOGLE_APPLICATION_CREDENTIALS"])
async def test_a_service_account_key_file_pushes_through_fcm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fcm: FcmFake, name: str
) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv(name, str(key_file(tmp_path, fcm)))
    monkeypatch.setenv("FCM_URL", fcm.url + "/v1/projects/{0}/messages:send")
    target, message = unique("tok"), PushMessage("Hi", "There", {"type": "test"})

    live = load_settings(Settings)
    async with AsyncExitStack() as stack:
        [result] = await push_sender(live, stack).send(message, [target])

    assert provider_modes(live)["fcm"] == "live"
    assert live.firebase_project_id == fcm.project_id
    assert result.outcome == "sent"
    assert len(fcm.deliveries_to(target)) == 1


@pytest.mark.parametrize(
    ("changes", "variables", "message"),
    [
        ({"client_email": None}, {}, r"FIREBASE_CREDENTIALS_FILE \(.*\) lacks client_email$"),
        ({"type": "authorized_user"}, {}, "is not a service-account key file"),
        ({}, {"FIREBASE_PRIVATE_KEY": "pem"}, "FIREBASE_PRIVATE_KEY is set beside"),
        ({}, {"FIREBASE_PROJECT_ID": "another"}, "FIREBASE_PROJECT_ID is set beside"),
    ],
)
def test_a_key_file_that_cannot_serve_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fcm: FcmFake,
    changes: dict[str, object],
    variables: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv("FIREBASE_CREDENTIALS_FILE", str(key_file(tmp_path, fcm, **changes)))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError, match=message) as refused:
        load_settings(Settings)

    assert str(refused.value).count("\n") == 0
    assert str(refused.value).startswith("configuration error: ")
    assert "PRIVATE KEY" not in str(refused.value)


def test_a_missing_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))

    with pytest.raises(SettingsError, match=r"nope\.json\) cannot be read: No such file"):
        load_settings(Settings)


def test_the_seed_guides_template_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv("EMAIL_WELCOME_TEMPLATE_ID", "d-seed-welcome")
    monkeypatch.setenv("EMAIL_ORDER_CONFIRMATION_TEMPLATE_ID", "d-seed-order")

    read = load_settings(Settings)
    monkeypatch.setenv("SENDGRID_TEMPLATE_WELCOME", "d-ours")
    with pytest.raises(SettingsError) as refused:
        load_settings(Settings)

    assert (read.sendgrid_template_welcome, read.sendgrid_template_order_confirmation) == (
        "d-seed-welcome",
        "d-seed-order",
    )
    assert str(refused.value) == (
        "configuration error: EMAIL_WELCOME_TEMPLATE_ID and SENDGRID_TEMPLATE_WELCOME are both "
        "set, to different values: set one"
    )
