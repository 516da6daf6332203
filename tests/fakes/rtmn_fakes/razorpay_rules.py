"""What Razorpay's API rejects, and the error body it answers with."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
# GET /v1/orders: the filters and paging Razorpay documents for "Fetch All Orders".
ORDER_QUERY = frozenset({"receipt", "authorized", "from", "to", "count", "skip", "expand[]"})
REFUND_FIELDS = frozenset({"amount", "speed", "notes", "receipt"})
CAPTURE_FIELDS = frozenset({"amount", "currency"})
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


@dataclass(frozen=True)
class OrderQuery:
    """What `GET /v1/orders` was asked for; Razorpay lists newest first, 10 by default."""

    receipt: str | None = None
    authorized: bool | None = None
    since: int | None = None
    until: int | None = None
    count: int = 10
    skip: int = 0
    with_payments: bool = False


def order_query(query: Mapping[str, str]) -> OrderQuery:
    reject_unknown(dict(query), ORDER_QUERY)
    authorized = query.get("authorized")
    if authorized not in (None, "0", "1"):
        raise RazorpayError("The selected authorized is invalid.", "authorized")
    expand = query.get("expand[]")
    if expand not in (None, "payments"):
        raise RazorpayError("The selected expand is invalid.", "expand")
    # Wording of the paging errors not from a published sample; code and field are.
    count = _whole(query, "count", 10)
    if not 1 <= count <= 100:
        raise RazorpayError("The count must be between 1 and 100.", "count")
    return OrderQuery(
        receipt=query.get("receipt"),
        authorized=None if authorized is None else authorized == "1",
        since=_whole(query, "from", None),
        until=_whole(query, "to", None),
        count=count,
        skip=_whole(query, "skip", 0),
        with_payments=expand is not None,
    )


def _whole(query: Mapping[str, str], name: str, default: int | None) -> Any:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise RazorpayError(f"The {name} must be an integer.", name)
    return int(value)
