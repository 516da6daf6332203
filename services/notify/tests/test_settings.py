"""A bad provider setting stops start-up with one line naming it; none at all means sandboxes."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from notify.app import build_app, provider_modes, push_sender
from notify.settings import Settings
from rtmn_shared.settings import SettingsError

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
