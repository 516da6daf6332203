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


# POST /v1/payments/qr_codes (api/qr-codes/create.md); tax_invoice belongs to GST QR Codes.
QR_FIELDS = frozenset(
    {
        "type",
        "name",
        "usage",
        "fixed_amount",
        "payment_amount",
        "description",
        "customer_id",
        "close_by",
        "notes",
        "tax_invoice",
    }
)
QR_QUERY = frozenset({"from", "to", "count", "skip"})
# close_by: at least 2 minutes ahead; none, or more than 2 hours ahead, becomes 2 hours.
QR_MIN_LIFETIME, QR_MAX_LIFETIME = 120, 2 * 3600
QR_CLOSE_BY_RANGE = (946684800, 4765046400)
NOTE_MAX_CHARS = 256


@dataclass(frozen=True)
class QrCode:
    """A QR Code as asked for, with Razorpay's defaults and close_by applied."""

    usage: str
    fixed_amount: bool
    payment_amount: int | None
    close_by: int | None


def qr_code(body: dict[str, Any], now: int) -> QrCode:
    reject_unknown(body, QR_FIELDS)
    kind = body.get("type")
    if kind is None:
        raise RazorpayError("The type field is required.", "type")
    if kind != "upi_qr":
        raise RazorpayError("The selected type is invalid.", "type")
    usage = body.get("usage")
    if usage is None:
        raise RazorpayError("The usage field is required.", "usage")
    if usage not in ("single_use", "multiple_use"):
        raise RazorpayError("The selected usage is invalid.", "usage")
    fixed = body.get("fixed_amount", False)
    if not isinstance(fixed, bool):
        raise RazorpayError("The fixed amount field must be true or false.", "fixed_amount")
    if usage == "single_use" and not fixed:
        # The docs' rule ("ensure that fixed_amount is true"); the wording is not published.
        raise RazorpayError("fixed_amount must be true for a single_use QR Code", "fixed_amount")
    amount = _qr_amount(body.get("payment_amount"), required=fixed)
    return QrCode(usage, fixed, amount, _close_by(body.get("close_by"), usage, now))


def _qr_amount(value: Any, *, required: bool) -> int | None:
    if value is None:
        if required:
            raise RazorpayError("The payment amount field is required.", "payment_amount")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RazorpayError("The payment amount must be an integer.", "payment_amount")
    if value < 1:
        raise RazorpayError("The payment amount must be at least 1.", "payment_amount")
    return value


def _close_by(value: Any, usage: str, now: int) -> int | None:
    if usage == "multiple_use":
        if value is not None:
            # Wording not published; the docs say close_by on multiple_use is an error.
            raise RazorpayError("close_by is not allowed for a multiple_use QR Code", "close_by")
        return None
    if value is None:
        return now + QR_MAX_LIFETIME
    low, high = QR_CLOSE_BY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RazorpayError(f"close_by must be between {low} and {high}", "close_by")
    if value < now + QR_MIN_LIFETIME:
        # Wording not published; the rule ("at least 2 minutes after the current time") is.
        raise RazorpayError(
            "close_by should be at least 2 minutes after the current time", "close_by"
        )
    return min(value, now + QR_MAX_LIFETIME)


def qr_notes(value: Any) -> Any:
    checked = notes(value)
    if isinstance(checked, dict) and any(len(str(v)) > NOTE_MAX_CHARS for v in checked.values()):
        raise RazorpayError(f"notes values may be at most {NOTE_MAX_CHARS} characters", "notes")
    return checked


@dataclass(frozen=True)
class Page:
    since: int | None = None
    until: int | None = None
    count: int = 10
    skip: int = 0


def page_query(query: Mapping[str, str]) -> Page:
    """`from`, `to`, `count` (1..100, default 10) and `skip`, as QR Code lists take them."""
    reject_unknown(dict(query), QR_QUERY)
    count = _whole(query, "count", 10)
    if not 1 <= count <= 100:
        raise RazorpayError("The count must be between 1 and 100.", "count")
    return Page(
        _whole(query, "from", None), _whole(query, "to", None), count, _whole(query, "skip", 0)
    )
