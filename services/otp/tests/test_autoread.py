"""Android's SMS Retriever format, switched on by OTP_ANDROID_APP_HASH."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from otp.settings import OtpSettings
from rtmn_shared.cli.token import generate_keypair

if TYPE_CHECKING:
    from conftest import Starter

APP_HASH = "FA+9qCX9VSu"


def otp_settings(keys: tuple[str, str], **overrides: str) -> OtpSettings:
    login_key = generate_keypair()[1]  # the login tokens' key: required, never the OTP one
    return OtpSettings(  # type: ignore[call-arg]
        otp_hash_key="k" * 40, otp_signing_key=keys[0], jwt_public_key=login_key, **overrides
    )


async def test_with_an_app_hash_the_sms_is_readable_by_the_app(start_otp: Starter) -> None:
    async with start_otp(otp_android_app_hash=APP_HASH) as h:
        phone = h.new_phone()
        assert (await h.send(phone)).status == 202
        body = h.twilio.messages_to(phone)[0].body
        assert body.startswith("<#> ")
        assert body.splitlines()[-1] == APP_HASH
        assert len(body.encode()) <= 140
        assert (await h.verify(phone, h.twilio_code(phone))).status == 200


@pytest.mark.parametrize("bad", ["short", "FA+9qCX9VSu!", "FA 9qCX9VSu"])
def test_a_malformed_app_hash_is_refused_at_start(signing_keys: tuple[str, str], bad: str) -> None:
    with pytest.raises(ValidationError):
        otp_settings(signing_keys, otp_android_app_hash=bad)


def test_an_app_name_too_long_for_the_retriever_is_refused_at_start(
    signing_keys: tuple[str, str],
) -> None:
    with pytest.raises(ValidationError, match="140 bytes"):
        otp_settings(signing_keys, otp_android_app_hash=APP_HASH, otp_app_name="N" * 90)
