"""What Razorpay's API rejects, and the error body it answers with."""

from __future__ import annotations

import json
import re
from typing import Any, cast

from aiohttp import web

from rtmn_fakes.base import RECORDED, json_response
from rtmn_fakes.payloads import load

ORDER_FIELDS = frozenset(
    {
        "amount",
        "currency",
        "receipt",
        "notes",
        "partial_payment",
        "first_payment_min_amount",
        "payment_capture",
        "method",
        "customer_id",
        "offers",
        "transfers",
        "token",
        "bank_account",
    }
)
REFUND_FIELDS = frozenset({"amount", "speed", "notes", "receipt"})
CURRENCIES = frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "MYR"})
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{10,}$")


class RazorpayError(Exception):
    def __init__(self, description: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(description)
        self.body = load("razorpay", "api.order_create.error_400.json")
        self.body["error"].update(description=description, field=field)
        self.status = status


def na_error(description: str, status: int) -> web.Response:
    # Razorpay's shape for auth and idempotency errors: source/step/reason are "NA".
    error = {
        "code": "BAD_REQUEST_ERROR",
        "description": description,
        "source": "NA",
        "step": "NA",
        "reason": "NA",
        "metadata": {},
    }
    return json_response({"error": error}, status)


def json_object(request: web.Request) -> dict[str, Any]:
    raw = request[RECORDED].body
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RazorpayError("The request body must be a JSON object.")
    return cast(dict[str, Any], body)


def reject_unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise RazorpayError(
            f"{', '.join(extra)} is/are not required and should not be sent", extra[0]
        )


def amount(value: Any, *, required: bool) -> int:
    if value is None:
        if required:
            raise RazorpayError("The amount field is required.", "amount")
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise RazorpayError("The amount must be an integer.", "amount")
    if value < 100:
        raise RazorpayError("The amount must be at least INR 1.00", "amount")
    return value


def notes(value: Any) -> Any:
    if not value:
        return []  # Razorpay renders empty notes as a list, populated ones as an object
    if not isinstance(value, dict) or len(value) > 15:
        raise RazorpayError("notes must be an object of at most 15 keys", "notes")
    return value
