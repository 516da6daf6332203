"""The limits on a client's own events."""

from __future__ import annotations

import pytest

from analytics.client_events import event_name_problem, property_problem


@pytest.mark.parametrize("name", ["screen_view", "add_to_cart", "a", "x" * 40])
def test_plain_names_pass(name: str) -> None:
    assert event_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Screen View", "lower-case"),
        ("1st_open", "lower-case"),
        ("x" * 41, "lower-case"),
        ("session_start", "reserved by Google"),
        ("firebase_x", "reserved by Google"),
        ("payment_success", "services send themselves"),
    ],
)
def test_names_that_would_be_dropped_or_spoof_the_server_are_refused(name: str, why: str) -> None:
    problem = event_name_problem(name)
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("screen", "checkout"),
        ("product_id", "8a66058c-a56d-4ef6-8123-28b7c9f7e82f"),
        ("product_name", "Masala chai 250 g"),
        ("quantity", 3),
        ("price", 12.5),
        ("first_visit", True),
        ("session_id", 1_700_000_000),
    ],
)
def test_ordinary_properties_pass(name: str, value: str | int | float | bool) -> None:
    assert property_problem(name, value) is None


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("contact", "priya@example.com", "email"),
        ("note", "call me on +91 98765 43210", "phone"),
        ("ref", "9876543210", "phone"),
        ("blob", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "token"),
        ("coupon", "sk_live_51Habc123def456ghi789jkl", "token"),
        ("user_email", "x", "personal data"),
        ("phone_number", "x", "personal data"),
        ("auth_token", "x", "personal data"),
        ("card_last4", "4242", "personal data"),
        ("first_name", "Priya", "personal data"),
        ("long", "x" * 101, "100 characters"),
        ("big", 2**60, "2^53"),
        ("nan", float("nan"), "finite"),
        ("Bad-Name", "x", "names must"),
    ],
)
def test_personal_data_secrets_and_oversized_values_are_refused(
    name: str, value: str | int | float, why: str
) -> None:
    problem = property_problem(name, value)
    assert problem is not None
    assert why in problem
