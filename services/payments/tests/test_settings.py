"""The seed guide's names for payments' variables are read, never ignored."""

from __future__ import annotations

import pytest

from payments.settings import Settings
from rtmn_shared.settings import SettingsError, load_settings

KEY = "a public key is only parsed when a token is verified"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    for name in ("UPI_PAYEE_VPA", "UPI_PAYEE_NAME", "UPI_MERCHANT_ID", "UPI_MERCHANT_NAME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_seeds_upi_merchant_names_set_the_payee(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("UPI_MERCHANT_ID", "rez@icici")
    environment.setenv("UPI_MERCHANT_NAME", "REZ Stores")
    environment.setenv("UPI_PAYEE_NAME", "REZ Stores")  # the same value under both: fine

    settings = load_settings(Settings)

    assert (settings.upi_payee_vpa, settings.upi_payee_name) == ("rez@icici", "REZ Stores")


def test_both_names_set_to_different_values_stop_start_up(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("UPI_MERCHANT_ID", "rez@icici")
    environment.setenv("UPI_PAYEE_VPA", "other@okaxis")

    with pytest.raises(SettingsError) as refused:
        load_settings(Settings)

    assert str(refused.value) == (
        "configuration error: UPI_MERCHANT_ID and UPI_PAYEE_VPA are both set, to different "
        "values: set one"
    )


def test_no_upi_payee_has_a_default() -> None:
    settings = load_settings(Settings)

    assert (settings.upi_payee_vpa, settings.upi_payee_name) == (None, None)
    assert settings.upi_qr_lifetime_seconds == 900


@pytest.mark.parametrize("seconds", ["60", "7201"])
def test_a_qr_lifetime_razorpay_would_change_stops_start_up(
    environment: pytest.MonkeyPatch, seconds: str
) -> None:
    environment.setenv("UPI_QR_LIFETIME_SECONDS", seconds)

    with pytest.raises(SettingsError, match="UPI_QR_LIFETIME_SECONDS"):
        load_settings(Settings)
