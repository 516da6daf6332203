"""Stripe PaymentIntents and Refunds (API v1), as `stripe.StripeClient` sees it.

Every POST honours `Idempotency-Key` the way Stripe does: the first successful result is
replayed for the same key and parameters (`Idempotent-Replayed: true`), and reusing a key
with other parameters or on another endpoint is an `idempotency_error`.

Disputes come from the cardholder's bank: `open_dispute()` on a succeeded intent's charge and
`set_dispute_status()`, then `build_event("charge.dispute.created", dispute_id)`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from rtmn_fakes import stripe_form
from rtmn_fakes import stripe_rules as rules
from rtmn_fakes.auth import basic_credentials, bearer_token
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load
from rtmn_fakes.stripe_rules import Params, StripeError
from rtmn_fakes.stripe_webhooks import build_event, sign_stripe_webhook

__all__ = ["StripeError", "StripeFake", "build_event", "sign_stripe_webhook"]

PostHandler = Callable[[Params], Awaitable[web.Response]]
DisputeStatus = Literal[
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
    "prevented",
]
# Stripe gives 7 to 21 days to respond, depending on the network; the fake takes 7.
RESPOND_WITHIN_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class _Saved:
    path: str
    params: Params
    body: dict[str, Any]


class StripeFake(FakeServer):
    provider = "stripe"

    def __init__(
        self,
        api_key: str = "sk_test_fake000000000000000000",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key, self._clock = api_key, clock
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self._saved: dict[str, _Saved] = {}

    def reset_state(self) -> None:
        self.payment_intents.clear()
        self.refunds.clear()
        self.disputes.clear()
        self._saved.clear()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/payment_intents", self._idempotent(self._create_payment_intent)),
            web.get("/v1/payment_intents/{id}", self._fetch("payment_intent")),
            web.post("/v1/payment_intents/{id}/capture", self._on_intent(self._capture)),
            web.post("/v1/payment_intents/{id}/cancel", self._on_intent(self._cancel)),
            web.post("/v1/refunds", self._idempotent(self._create_refund)),
            web.get("/v1/refunds/{id}", self._fetch("refund")),
            web.get("/v1/disputes/{id}", self._fetch("dispute")),
        ]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        key = bearer_token(request) or (basic_credentials(request) or ("", ""))[0]
        if key == self.api_key:
            return None
        if not key:
            message = "You did not provide an API key."
        else:
            message = f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}"
        return StripeError(message, status=401).response()

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return StripeError("Too many requests", type="rate_limit_error", status=429).body
        return StripeError("An unknown error occurred", type="api_error", status=status).body

    # -- test control -------------------------------------------------------------------------

    def succeed(self, payment_intent_id: str) -> dict[str, Any]:
        """The customer paid: the intent succeeded with a charge that refunds can draw on."""
        with self._lock:
            intent = self.payment_intents[payment_intent_id]
            intent.update(
                status="succeeded",
                amount_received=intent["amount"],
                latest_charge=next_id("ch_", 24),
                payment_method=next_id("pm_", 24),
            )
            return dict(intent)

    def authorize(self, payment_intent_id: str) -> dict[str, Any]:
        """The customer paid an intent with `capture_method=manual` (made so here, if it was
        not): it awaits our capture."""
        with self._lock:
            intent = self.payment_intents[payment_intent_id]
            intent.update(
                status="requires_capture",
                capture_method="manual",
                amount_capturable=intent["amount"],
                latest_charge=next_id("ch_", 24),
                payment_method=next_id("pm_", 24),
            )
            return dict(intent)

    def set_refund_status(
        self, refund_id: str, status: Literal["pending", "succeeded", "failed", "canceled"]
    ) -> dict[str, Any]:
        with self._lock:
            self.refunds[refund_id]["status"] = status
            return dict(self.refunds[refund_id])

    def open_dispute(
        self,
        payment_intent_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        inquiry: bool = False,
    ) -> dict[str, Any]:
        """The cardholder disputes the intent's charge (an inquiry first if `inquiry`)."""
        with self._lock:
            intent = self.payment_intents[payment_intent_id]
            if intent["status"] != "succeeded":
                raise ValueError(f"payment intent {payment_intent_id} has no successful charge")
            dispute = load("stripe", "dispute.docs_example.json")
            now = int(self._clock())
            dispute.update(
                id=next_id("du_", 24),
                amount=intent["amount_received"] if amount is None else amount,
                charge=intent["latest_charge"],
                payment_intent=payment_intent_id,
                currency=intent["currency"],
                created=now,
                reason=reason,
                status="warning_needs_response" if inquiry else "needs_response",
            )
            dispute["evidence_details"]["due_by"] = now + RESPOND_WITHIN_SECONDS
            self.disputes[dispute["id"]] = dispute
            return dict(dispute)

    def set_dispute_status(self, dispute_id: str, status: DisputeStatus) -> dict[str, Any]:
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            dispute["is_charge_refundable"] = status.startswith("warning_")
            return dict(dispute)

    def build_event(self, type: str, object_id: str) -> bytes:
        """An Event about one of this fake's payment intents, refunds or disputes, e.g.
        `build_event("payment_intent.succeeded", pi_id)`."""
        with self._lock:
            found = (
                self.payment_intents.get(object_id)
                or self.disputes.get(object_id)
                or self.refunds[object_id]
            )
            return build_event(type, found, created=int(self._clock()))

    # -- handlers -----------------------------------------------------------------------------

    def _idempotent(self, handler: PostHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            params = stripe_form.decode(request[RECORDED].form_items)
            key = request.headers.get("Idempotency-Key")
            with self._lock:
                saved = self._saved.get(key) if key else None
                if saved is not None:
                    return self._replay(key or "", saved, request.path, params)
                try:
                    response = await handler(params)
                except StripeError as exc:
                    return exc.response()  # failed validation: Stripe saves nothing
                if key:
                    self._saved[key] = _Saved(request.path, params, rules.json_of(response))
                return response

        return handle

    def _on_intent(
        self, handler: Callable[[str, Params], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """An idempotent POST about the intent in the path."""

        async def handle(request: web.Request) -> web.Response:
            bound = functools.partial(handler, request.match_info["id"])
            return await self._idempotent(bound)(request)

        return handle

    def _replay(self, key: str, saved: _Saved, path: str, params: Params) -> web.Response:
        retry = f"Try using a key other than '{key}' if you meant to execute a different request."
        if saved.path != path:
            return StripeError(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{saved.path}' vs '{path}'). {retry}",
                type="idempotency_error",
            ).response()
        if saved.params != params:
            return StripeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. {retry}",
                type="idempotency_error",
            ).response()
        return json_response(saved.body, headers={"Idempotent-Replayed": "true"})

    def _fetch(self, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def fetch(request: web.Request) -> web.Response:
            store = {
                "payment_intent": self.payment_intents,
                "refund": self.refunds,
                "dispute": self.disputes,
            }[kind]
            object_id = request.match_info["id"]
            with self._lock:
                if object_id not in store:
                    message = f"No such {kind}: '{object_id}'"
                    return StripeError(
                        message, code="resource_missing", param="id", status=404
                    ).response()
                return json_response(store[object_id])

        return fetch

    async def _create_payment_intent(self, params: Params) -> web.Response:
        rules.reject_unknown(params, rules.PI_PARAMS)
        amount = rules.positive_int(params, "amount", required=True)
        currency = str(rules.required_param(params, "currency")).lower()
        if currency not in rules.CURRENCIES:
            raise StripeError(f"Invalid currency: {currency}.", param="currency")
        if amount < rules.MINIMUM_AMOUNT:
            raise StripeError(
                f"Amount must convert to at least {rules.MINIMUM_AMOUNT} cents.",
                param="amount",
                code="amount_too_small",
            )
        capture_method = params.get("capture_method", "automatic")
        if capture_method not in rules.CAPTURE_METHODS:
            raise StripeError(f"Invalid capture_method: {capture_method}", param="capture_method")
        intent = load("stripe", "payment_intent.docs_example.json")
        intent_id = next_id("pi_", 24)
        intent.update(
            id=intent_id,
            amount=amount,
            currency=currency,
            metadata=rules.metadata(params.get("metadata")),
            description=params.get("description"),
            receipt_email=params.get("receipt_email"),
            capture_method=capture_method,
            client_secret=f"{intent_id}_secret_{next_id('', 25, tag='')}",
            created=int(self._clock()),
        )
        self.payment_intents[intent_id] = intent
        return json_response(intent)

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            message = f"No such payment_intent: '{intent_id}'"
            raise StripeError(message, param="intent", code="resource_missing", status=404)
        return intent

    async def _capture(self, intent_id: str, params: Params) -> web.Response:
        rules.reject_unknown(params, rules.CAPTURE_PARAMS)
        intent = self._intent(intent_id)
        rules.expect_status(intent, "captured", rules.CAPTURABLE)
        capturable = intent["amount_capturable"]
        amount = rules.positive_int(params, "amount_to_capture", required=False) or capturable
        if amount > capturable:
            raise StripeError(
                f"The amount_to_capture ({amount}) must be less than or equal to the "
                f"amount_capturable ({capturable}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
        # What is not captured is released: the intent is done either way.
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return json_response(intent)

    async def _cancel(self, intent_id: str, params: Params) -> web.Response:
        rules.reject_unknown(params, rules.CANCEL_PARAMS)
        intent = self._intent(intent_id)
        rules.expect_status(intent, "canceled", rules.CANCELABLE)
        reason = params.get("cancellation_reason")
        if reason is not None and reason not in rules.CANCELLATION_REASONS:
            raise StripeError(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
        intent.update(
            status="canceled",
            amount_capturable=0,
            cancellation_reason=reason,
            canceled_at=int(self._clock()),
        )
        return json_response(intent)

    async def _create_refund(self, params: Params) -> web.Response:
        rules.reject_unknown(params, rules.REFUND_PARAMS)
        intent_id = params.get("payment_intent")
        if intent_id is None:
            raise StripeError(
                "One of the following params should be provided for this request: "
                "payment_intent or charge."
            )
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            message = f"No such payment_intent: '{intent_id}'"
            raise StripeError(message, param="payment_intent", code="resource_missing")
        if intent["status"] != "succeeded":
            raise StripeError("This PaymentIntent does not have a successful charge to refund.")
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent_id and r["status"] not in ("failed", "canceled")
        )
        left = intent["amount_received"] - refunded
        if left == 0:
            message = f"Charge {intent['latest_charge']} has already been refunded."
            raise StripeError(message, code="charge_already_refunded")
        amount = rules.positive_int(params, "amount", required=False) or left
        if amount > left:
            message = (
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            )
            raise StripeError(message, param="amount", code="amount_too_large")
        reason = params.get("reason")
        if reason is not None and reason not in rules.REFUND_REASONS:
            raise StripeError(f"Invalid reason: {reason}", param="reason")
        refund = load("stripe", "refund.docs_example.json")
        refund.update(
            id=next_id("re_", 24),
            amount=amount,
            currency=intent["currency"],
            charge=intent["latest_charge"],
            payment_intent=intent_id,
            metadata=rules.metadata(params.get("metadata")),
            reason=reason,
            balance_transaction=next_id("txn_", 24),
            created=int(self._clock()),
        )
        self.refunds[refund["id"]] = refund
        return json_response(refund)
