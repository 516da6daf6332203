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


APP_HASH = "FA+9qCX9VSu"


def test_without_an_app_hash_the_sms_is_plain_text() -> None:
    body = domain.sms_body("123456", app_name="RTMN", minutes=5)
    assert body.startswith("123456 is your RTMN verification code")
    assert "<#>" not in body


def test_with_an_app_hash_the_sms_follows_the_sms_retriever_format() -> None:
    body = domain.sms_body("123456", app_name="RTMN", minutes=5, app_hash=APP_HASH)
    assert body.startswith("<#> ")
    assert "123456" in body
    assert body.splitlines()[-1] == APP_HASH
    assert len(body.encode()) <= 140


def test_a_retriever_message_over_140_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="140 bytes"):
        domain.sms_body("123456", app_name="R" * 80, minutes=5, app_hash=APP_HASH)


def test_the_destination_prefix_is_the_country_code_and_the_operator_series() -> None:
    phone = parse_phone("+919876543210", INDIA)
    assert domain.destination_prefix(phone, 4) == "+919876"
    us = parse_phone("+12025550143", frozenset({"US"}))
    assert domain.destination_prefix(us, 3) == "+1202"
