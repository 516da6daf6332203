"""What Stripe's API rejects, and its error body."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from rtmn_fakes.base import json_response
from rtmn_fakes.ids import next_id

PI_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "metadata",
        "description",
        "receipt_email",
        "customer",
        "payment_method",
        "payment_method_types",
        "automatic_payment_methods",
        "confirm",
        "capture_method",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "expand",
        "setup_future_usage",
        "return_url",
        "off_session",
        "transfer_group",
        "payment_method_options",
    }
)
REFUND_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata", "expand"})
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
CAPTURE_METHODS = frozenset({"automatic", "automatic_async", "manual"})
CAPTURE_PARAMS = frozenset({"amount_to_capture", "metadata", "expand"})
CANCEL_PARAMS = frozenset({"cancellation_reason", "expand"})
CANCELLATION_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer", "abandoned"})
# "Cancel a PaymentIntent" and "Capture a PaymentIntent" (API reference): the states each allows.
CAPTURABLE = ("requires_capture",)
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CURRENCIES = frozenset({"usd", "inr", "eur", "gbp", "sgd", "aed", "aud", "cad"})
MINIMUM_AMOUNT = 50  # the smallest charge Stripe accepts, in minor units, for these currencies

Params = dict[str, Any]


class StripeError(Exception):
    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"message": message, "type": type}
        if code is not None:
            error.update(code=code, doc_url=f"https://stripe.com/docs/error-codes/{code}")
        if param is not None:
            error["param"] = param
        self.body, self.status = {"error": error}, status

    def response(self) -> web.Response:
        return json_response(self.body, self.status, {"Request-Id": next_id("req_")})


def json_of(response: web.Response) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.body if isinstance(response.body, bytes) else b"")
    return parsed


def reject_unknown(params: Params, allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(f"Received unknown parameter: {name}", param=name)


def required_param(params: Params, name: str) -> Any:
    if name not in params or params[name] == "":
        raise StripeError(f"Missing required param: {name}.", param=name, code="parameter_missing")
    return params[name]


def positive_int(params: Params, name: str, *, required: bool) -> int:
    if not required and name not in params:
        return 0
    raw = required_param(params, name)
    if not isinstance(raw, str) or not raw.isdigit() or int(raw) <= 0:
        raise StripeError("Invalid positive integer", param=name)
    return int(raw)


def metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise StripeError("Invalid metadata: at most 50 keys are allowed", param="metadata")
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise StripeError(f"Invalid metadata[{key}]", param=f"metadata[{key}]")
    return dict(value)


def expect_status(intent: dict[str, Any], verb: str, allowed: tuple[str, ...]) -> None:
    """Stripe's refusal of a capture or cancel in the wrong state."""
    if intent["status"] in allowed:
        return
    infinitive = {"captured": "capture", "canceled": "cancel"}[verb]
    raise StripeError(
        f"You cannot {infinitive} this PaymentIntent because it has a status of "
        f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
        f"{verb}: {', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
    )
