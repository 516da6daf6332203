"""The pure rules: phone numbers, purposes, codes, HMACs and the client address."""

from __future__ import annotations

import pytest

from otp import domain
from otp.domain import (
    Hasher,
    InvalidPhone,
    UnknownPurpose,
    check_purpose,
    parse_phone,
)

INDIA = frozenset({"IN"})


@pytest.mark.parametrize("raw", ["+91 98765 43210", "098765-43210", "9876543210", "+919876543210"])
def test_indian_numbers_normalise_to_e164(raw: str) -> None:
    phone = parse_phone(raw, INDIA)
    assert (phone.e164, phone.region) == ("+919876543210", "IN")


@pytest.mark.parametrize("raw", ["+12025550143", "12345", "+91 98765", "call me", ""])
def test_other_regions_and_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone) as error:
        parse_phone(raw, INDIA)
    digits = "".join(c for c in raw if c.isdigit())
    assert not digits or digits[-5:] not in str(error.value)


def test_several_regions_need_the_country_code() -> None:
    regions = frozenset({"IN", "US"})
    assert parse_phone("+12025550143", regions).region == "US"
    with pytest.raises(InvalidPhone):
        parse_phone("9876543210", regions)


def test_a_phone_never_prints_its_digits() -> None:
    phone = parse_phone("+919876543210", INDIA)
    assert "98765432" not in repr(phone)
    assert "98765432" not in phone.masked
    assert phone.masked.endswith("10")


def test_purpose_is_an_allow_list() -> None:
    assert check_purpose("login", frozenset({"login"})) == "login"
    with pytest.raises(UnknownPurpose):
        check_purpose("withdraw", frozenset({"login"}))


def test_codes_are_six_digits_zero_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain.secrets, "randbelow", lambda n: 42 if n == 10**6 else -1)
    assert domain.new_code() == "000042"


def test_codes_come_from_the_whole_range() -> None:
    codes = {domain.new_code() for _ in range(2000)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 1990


def test_digests_bind_purpose_phone_and_code() -> None:
    hasher = Hasher(b"k" * 32)
    phone = parse_phone("+919876543210", INDIA)
    other = parse_phone("+919876543211", INDIA)
    base = hasher.code("login", phone, "123456")
    assert base == hasher.code("login", phone, "123456")
    assert len({base, hasher.code("signup", phone, "123456"), hasher.code("login", other,
               "123456"), hasher.code("login", phone, "123457")}) == 4  # fmt: skip
    assert "123456" not in base
    assert Hasher(b"j" * 32).code("login", phone, "123456") != base
    assert hasher.phone(phone) != hasher.phone(other)
