"""The webhook secrets' rotation window, on an explicit clock: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from payments.webhooks import Secrets

UNTIL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_previous_secret_counts_until_the_end_of_its_window_only() -> None:
    secrets = Secrets.of(SecretStr("new"), SecretStr("old"), UNTIL)

    assert secrets.valid(UNTIL - timedelta(microseconds=1)) == [b"new", b"old"]
    assert secrets.valid(UNTIL) == [b"new"]
    assert secrets.valid(UNTIL + timedelta(days=1)) == [b"new"]


def test_previous_secret_without_an_end_is_never_accepted() -> None:
    secrets = Secrets.of(SecretStr("new"), SecretStr("old"))

    assert secrets.valid(UNTIL) == [b"new"]


def test_no_secret_accepts_nothing() -> None:
    assert Secrets.of(None).valid(UNTIL) == []
