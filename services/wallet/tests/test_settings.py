"""The earning rule as configured through the environment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rtmn_shared.settings import SettingsError, load_settings
from wallet.settings import WalletSettings

KEY = "a public key is only parsed when a token is verified"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    for name in (
        "CASHBACK_PERCENT",
        "WALLET_TIER_MULTIPLIERS",
        "WALLET_DEFAULT_TIER",
        "CASHBACK_CAP_COINS",
        "CASHBACK_CURRENCIES",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_the_documented_rule() -> None:
    rule = load_settings(WalletSettings).earning_rule()
    assert rule.percent == Decimal(5)
    assert rule.multipliers == {
        "bronze": Decimal(1),
        "silver": Decimal("1.25"),
        "gold": Decimal("1.5"),
        "platinum": Decimal(2),
    }
    assert (rule.default_tier, rule.cap_coins, rule.currencies) == ("bronze", 500, {"INR"})


def test_the_rule_is_read_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CASHBACK_PERCENT", "2.5")
    environment.setenv("WALLET_TIER_MULTIPLIERS", "basic=1,vip=3")
    environment.setenv("WALLET_DEFAULT_TIER", "Basic")
    environment.setenv("CASHBACK_CAP_COINS", "100")
    environment.setenv("CASHBACK_CURRENCIES", "inr, usd")
    rule = load_settings(WalletSettings).earning_rule()
    assert rule.coins_for(100_000, "USD", "vip") == 75  # $1000 × 2.5 % × 3
    assert rule.coins_for(100_000, "INR", None) == 25
    assert rule.coins_for(10_000_000, "INR", "vip") == 100


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WALLET_TIER_MULTIPLIERS", "gold", "tier=multiplier"),
        ("WALLET_DEFAULT_TIER", "diamond", "default tier"),
        ("CASHBACK_PERCENT", "150", "CASHBACK_PERCENT"),
        ("CASHBACK_CAP_COINS", "-1", "CASHBACK_CAP_COINS"),
    ],
)
def test_a_bad_rule_stops_start_up_with_its_reason(
    environment: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    environment.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(WalletSettings)
