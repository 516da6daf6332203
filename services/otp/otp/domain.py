"""The OTP rules as pure functions: phones, purposes, codes and what Redis may keep of them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import phonenumbers

from rtmn_shared.logs import mask_e164

CODE_DIGITS = 6
# Android's SMS Retriever reads a message that starts with "<#>", is at most 140 bytes and ends
# with the app's 11-character hash (base64 of a SHA-256 of the package and its signing key).
RETRIEVER_PREFIX = "<#>"
RETRIEVER_MAX_BYTES = 140
APP_HASH = re.compile(r"^[A-Za-z0-9+/]{11}$")


class InvalidPhone(ValueError):
    """The number does not parse, is not valid, or is outside the allowed regions."""


class UnknownPurpose(ValueError):
    pass


@dataclass(frozen=True)
class Phone:
    e164: str
    region: str

    def __repr__(self) -> str:
        # Keeps the full number out of tracebacks and debug output.
        return f"Phone(****{self.e164[-2:]}, {self.region})"

    @property
    def masked(self) -> str:
        return mask_e164(self.e164)


def parse_phone(raw: str, allowed_regions: frozenset[str]) -> Phone:
    # With one region a national number ("98765 43210") is read as that region's.
    default_region = next(iter(allowed_regions)) if len(allowed_regions) == 1 else None
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_regions:
        raise InvalidPhone("phone numbers of this region are not served")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164, region)


def destination_prefix(phone: Phone, national_digits: int) -> str:
    """The range a number belongs to: its country code and the first national digits, which
    name the operator's series (India: 4 digits). Country codes are prefix-free, so the string
    is unambiguous; it is too short to name anyone."""
    number = phonenumbers.parse(phone.e164)
    national = phonenumbers.national_significant_number(number)
    return f"+{number.country_code}{national[:national_digits]}"


def check_purpose(purpose: str, allowed: frozenset[str]) -> str:
    if purpose not in allowed:
        raise UnknownPurpose(purpose)
    return purpose


def sms_body(code: str, *, app_name: str, minutes: int, app_hash: str | None = None) -> str:
    """The SMS text; with an Android app hash, in the SMS Retriever's format so the app reads it."""
    text = f"{code} is your {app_name} verification code. It expires in {minutes} minutes."
    if app_hash is None:
        return f"{text} Do not share it."
    body = f"{RETRIEVER_PREFIX} {text}\n{app_hash}"
    if len(body.encode()) > RETRIEVER_MAX_BYTES:
        raise ValueError(f"the SMS Retriever message must be <= {RETRIEVER_MAX_BYTES} bytes")
    return body


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class Hasher:
    """All that leaves this process about a phone or a code is an HMAC under the server key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def phone(self, phone: Phone) -> str:
        return self._mac(f"phone|{phone.e164}")

    def code(self, purpose: str, phone: Phone, code: str) -> str:
        return self._mac(f"code|{purpose}|{phone.e164}|{code}")

    def client(self, client: str) -> str:
        return self._mac(f"ip|{client}")[:32]
