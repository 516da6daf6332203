"""The OTP rules as pure functions: phones, purposes, codes and what Redis may keep of them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import phonenumbers

CODE_DIGITS = 6


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
        return f"{self.e164[:3]}******{self.e164[-2:]}"


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


def check_purpose(purpose: str, allowed: frozenset[str]) -> str:
    if purpose not in allowed:
        raise UnknownPurpose(purpose)
    return purpose


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
