"""Every name a service reads is known to the start-up guard (rtmn_shared/env_names.py), so a
name of ours that no service reads stops start-up instead of being dropped without a word."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from rtmn_shared.env_names import KNOWN, NAMESPACES, SETTINGS, UNGUARDED, unread
from rtmn_shared.service import Service
from rtmn_shared.settings import CommonSettings
from rtmn_shared.suite import SERVICES

# The seed integration guide's names the suite knows (DESIGN.md §5, the services' READMEs).
SEED_NAMES = {
    "RAZORPAY_KEY_ID": "payments",
    "RAZORPAY_KEY_SECRET": "payments",
    "RAZORPAY_WEBHOOK_SECRET": "payments",
    "UPI_MERCHANT_ID": "payments",
    "UPI_MERCHANT_NAME": "payments",
    "TWILIO_ACCOUNT_SID": "otp",
    "SENDGRID_API_KEY": "notify",
    "EMAIL_WELCOME_TEMPLATE_ID": "notify",
    "EMAIL_ORDER_CONFIRMATION_TEMPLATE_ID": "notify",
    "FIREBASE_CREDENTIALS_FILE": "notify",
    "GOOGLE_APPLICATION_CREDENTIALS": "notify",
    "AWS_S3_BUCKET": "media",
    "CDN_BASE_URL": "media",
    "GOOGLE_MAPS_API_KEY": "geo",
}


def read_by(name: str) -> set[str]:
    service: Service[CommonSettings] = importlib.import_module(f"{name}.app").SERVICE
    settings = service.settings
    return {field.upper() for field in settings.model_fields} | set(settings.other_names)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_name_a_service_reads_is_known_to_the_guard(name: str) -> None:
    missing = read_by(name) - SETTINGS
    assert not missing, f"add to SETTINGS in shared/rtmn_shared/env_names.py: {sorted(missing)}"


def test_every_known_settings_name_is_read_by_a_service() -> None:
    stale = SETTINGS - set().union(*(read_by(name) for name in SERVICES))
    assert not stale, f"remove from SETTINGS in shared/rtmn_shared/env_names.py: {sorted(stale)}"


def test_each_known_name_is_in_a_guarded_namespace_or_one_left_unguarded_on_purpose() -> None:
    assert {name for name in KNOWN if not name.startswith(NAMESPACES + UNGUARDED)} == set()


@pytest.mark.parametrize(("name", "service"), sorted(SEED_NAMES.items()))
def test_the_seed_guide_names_are_read(name: str, service: str) -> None:
    assert name in read_by(service)
    assert unread({name: "set"}) == []


def test_a_service_refuses_to_start_on_a_misspelt_name_before_it_connects_anywhere() -> None:
    env = {
        "PATH": "/usr/bin",
        "JWT_JWKS_URL": "file:///nonexistent/jwks.json",
        "DATABASE_URL": "postgresql://127.0.0.1:1/none",  # never reached
        "CASHBACK_PERCNT": "7",
    }
    result = subprocess.run(
        [sys.executable, "-m", "wallet", "api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "configuration error: CASHBACK_PERCNT is set but no RTMN service reads it: "
        "did you mean CASHBACK_PERCENT?"
    )
