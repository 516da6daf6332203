"""Razorpay Orders, Payments, Refunds and QR Codes API, as `razorpay.Client(base_url=fake.url)`
sees it.

Orders are listed as `GET /v1/orders` does (`client.order.all({"receipt": ...})`): filtered by
receipt, authorized, from and to, newest first, `count` (default 10, at most 100) after `skip`.

Payments cannot be made through the API (a customer pays in Checkout), so tests create them
with `capture()`, `authorize()` or `fail_payment()`, then post the matching webhook built by
`build_webhook()` and signed by `sign_webhook()`. An authorized payment is captured with
`POST /v1/payments/{id}/capture` (its whole amount, in its currency); Razorpay has no void.
Disputes are raised by the customer's bank: `open_dispute()` and `set_dispute_status()`, then
`build_webhook("payment.dispute.<state>", dispute_id=...)`; `GET /v1/disputes/{id}` fetches
one. A QR Code (`fake.qr`, `razorpay_qr.py`) is paid with `pay_qr_code()`, and its
`qr_code.credited` webhook built the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from rtmn_fakes import razorpay_rules as rules
from rtmn_fakes.auth import basic_credentials
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load
from rtmn_fakes.razorpay_qr import QrCodes
from rtmn_fakes.razorpay_webhooks import (
    build_webhook,
    checkout_signature,
    sign_webhook,
    webhook_headers,
)

__all__ = ["RazorpayFake", "build_webhook", "checkout_signature", "sign_webhook", "webhook_headers"]

PaymentMethod = Literal["upi", "card", "netbanking"]
RefundStatus = Literal["pending", "processed", "failed"]
DisputeStatus = Literal["open", "under_review", "won", "lost", "closed"]
# Razorpay's chargeback phase gives a merchant 3 business days to respond: about 5 calendar days.
RESPOND_WITHIN_SECONDS = 5 * 86_400


class RazorpayFake(FakeServer):
    provider = "razorpay"

    def __init__(
        self,
        key_id: str = "rzp_test_fakekey000001",
        key_secret: str = "fake_key_secret",  # noqa: S107 - the fake's own test credential
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.key_id, self.key_secret, self._clock = key_id, key_secret, clock
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self._refund_keys: dict[str, tuple[str, bytes, str]] = {}
        self.qr = QrCodes(self._lock, clock, self.payments)

    def reset_state(self) -> None:
        self.qr.reset()
        self.orders.clear()
        self.payments.clear()
        self.refunds.clear()
        self.disputes.clear()
        self._refund_keys.clear()

    def routes(self) -> list[web.RouteDef]:
        return [
            *self.qr.routes(),
            web.post("/v1/orders", self._create_order),
            web.get("/v1/orders", self._list_orders),
            web.get("/v1/orders/{id}", self._fetch("order")),
            web.get("/v1/orders/{id}/payments", self._order_payments),
            web.get("/v1/payments/{id}", self._fetch("payment")),
            web.post("/v1/payments/{id}/refund", self._refund),
            web.post("/v1/payments/{id}/capture", self._capture),
            web.get("/v1/refunds/{id}", self._fetch("refund")),
            web.get("/v1/disputes/{id}", self._fetch("dispute")),
        ]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if basic_credentials(request) == (self.key_id, self.key_secret):
            return None
        return rules.na_error("Authentication failed", 401)

    def fault_body(self, status: int) -> Any:
        code = "SERVER_ERROR" if status >= 500 else "BAD_REQUEST_ERROR"
        return {
            "error": {
                "code": code,
                "description": "The server encountered an error.",
                "source": "NA",
                "step": "NA",
                "reason": "NA",
                "metadata": {},
            }
        }

    # -- test control -------------------------------------------------------------------------

    def capture(self, order_id: str, method: PaymentMethod = "upi") -> dict[str, Any]:
        """A customer paid the order in full and the payment was auto-captured."""
        return self._pay(order_id, method, "captured")

    def authorize(self, order_id: str, method: PaymentMethod = "upi") -> dict[str, Any]:
        return self._pay(order_id, method, "authorized")

    def fail_payment(self, order_id: str, method: PaymentMethod = "upi") -> dict[str, Any]:
        return self._pay(order_id, method, "failed")

    def pay_qr_code(self, qr_id: str, amount: int | None = None) -> dict[str, Any]:
        """A customer paid the QR Code from a UPI app (its fixed amount unless told otherwise)."""
        return self.qr.pay(qr_id, amount)

    def capture_authorized(self, payment_id: str) -> dict[str, Any]:
        """The merchant captured an authorized payment elsewhere (the Dashboard, say)."""
        with self._lock:
            payment = self.payments[payment_id]
            body = {"amount": payment["amount"], "currency": payment["currency"]}
            return dict(self._captured(self._capturable(payment_id, body)))

    def release_authorized(self, payment_id: str) -> dict[str, Any]:
        """Razorpay refunded an authorization nobody captured within its capture window (3 days
        by default): the payment reads `refunded`, never `captured`."""
        with self._lock:
            payment = self.payments[payment_id]
            if payment["status"] != "authorized":
                raise ValueError(f"payment {payment_id} is {payment['status']}, not authorized")
            payment.update(
                status="refunded",
                amount_refunded=payment["amount"],
                refund_status="full",
            )
            return dict(payment)

    def set_refund_status(self, refund_id: str, status: RefundStatus) -> dict[str, Any]:
        with self._lock:
            refund = self.refunds[refund_id]
            if refund["status"] != "failed" and status == "failed":
                # A failed refund's money returns to the merchant: it is refundable again.
                self._add_refunded(self.payments[refund["payment_id"]], -refund["amount"])
            refund["status"] = status
            return dict(refund)

    def open_dispute(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason_code: str = "goods_or_services_not_received_or_partially_received",
        phase: str = "chargeback",
    ) -> dict[str, Any]:
        """The customer's bank disputes a captured payment (all of it unless `amount`)."""
        with self._lock:
            payment = self.payments[payment_id]
            if not payment["captured"]:
                raise ValueError(f"payment {payment_id} is not captured")
            sample = load("razorpay", "webhook.payment.dispute.created.json")
            dispute = sample["payload"]["dispute"]["entity"]
            now = int(self._clock())
            dispute.update(
                id=next_id("disp_"),
                payment_id=payment_id,
                amount=payment["amount"] if amount is None else amount,
                currency=payment["currency"],
                amount_deducted=0,
                reason_code=reason_code,
                respond_by=now + RESPOND_WITHIN_SECONDS,
                status="open",
                phase=phase,
                created_at=now,
            )
            dispute["evidence"]["amount"] = dispute["amount"]
            self.disputes[dispute["id"]] = dispute
            return dict(dispute)

    def set_dispute_status(
        self, dispute_id: str, status: DisputeStatus, *, phase: str | None = None
    ) -> dict[str, Any]:
        """A lost dispute's amount is deducted from the merchant's balance; a new `phase`
        (pre_arbitration, arbitration) comes with a new date to respond by."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute.update(status=status, amount_deducted=0)
            if status == "lost":
                dispute["amount_deducted"] = dispute["amount"]
            if phase is not None and phase != dispute["phase"]:
                dispute.update(phase=phase, respond_by=int(self._clock()) + RESPOND_WITHIN_SECONDS)
            return dict(dispute)

    def build_webhook(
        self,
        event: str,
        *,
        payment_id: str | None = None,
        refund_id: str | None = None,
        dispute_id: str | None = None,
        qr_code_id: str | None = None,
        account_id: str = "acc_FakeAccount0001",
    ) -> bytes:
        """The webhook Razorpay would send for this fake's payment, refund, dispute or QR Code."""
        with self._lock:
            refund = self.refunds[refund_id] if refund_id else None
            dispute = self.disputes[dispute_id] if dispute_id else None
            about = refund or dispute or {}
            paid: str = payment_id or about.get("payment_id") or ""
            payment = self.payments[paid] if paid or qr_code_id is None else None
            order = self.orders.get(payment["order_id"]) if payment else None
            qr_id = qr_code_id or self.qr.of_payment.get(paid)
            return build_webhook(
                event,
                payment=payment,
                order=order,
                refund=refund,
                dispute=dispute,
                qr_code=self.qr.codes[qr_id] if qr_id else None,
                account_id=account_id,
                created_at=int(self._clock()),
            )

    def _pay(self, order_id: str, method: PaymentMethod, status: str) -> dict[str, Any]:
        with self._lock:
            if order_id in self.qr.codes:
                raise ValueError(f"{order_id} is a QR Code, not an order: use pay_qr_code()")
            order = self.orders[order_id]
            if order["status"] == "paid":
                raise ValueError(f"order {order_id} is already paid")
            payment = load("razorpay", f"api.payment_fetch.response.{method}.json")
            failed = load("razorpay", "webhook.payment.failed.upi.json")["payload"]["payment"]
            payment.update(
                id=next_id("pay_"),
                amount=order["amount_due"],
                currency=order["currency"],
                order_id=order_id,
                invoice_id=None,
                status=status,
                description=None,
                captured=status == "captured",
                notes=[],
                created_at=int(self._clock()),
            )
            if status == "failed":
                payment.update({k: v for k, v in failed["entity"].items() if k.startswith("error")})
                payment.update(fee=None, tax=None)
            order["attempts"] += 1
            order["status"] = "attempted"
            if status == "captured":
                order.update(amount_paid=order["amount"], amount_due=0, status="paid")
            self.payments[payment["id"]] = payment
            return dict(payment)

    @staticmethod
    def _add_refunded(payment: dict[str, Any], amount: int) -> None:
        payment["amount_refunded"] += amount
        refunded = payment["amount_refunded"]
        payment["refund_status"] = (
            None if refunded == 0 else ("full" if refunded == payment["amount"] else "partial")
        )
        payment["status"] = "refunded" if refunded == payment["amount"] else "captured"

    # -- handlers -----------------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.Response:
        try:
            body = rules.json_object(request)
            rules.reject_unknown(body, rules.ORDER_FIELDS)
            amount = rules.amount(body.get("amount"), required=True)
            currency = body.get("currency")
            if currency is None:
                raise rules.RazorpayError("The currency field is required.", "currency")
            if currency not in rules.CURRENCIES:
                raise rules.RazorpayError("Currency is not supported", "currency")
            receipt = body.get("receipt")
            if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
                raise rules.RazorpayError(
                    "The receipt may not be greater than 40 characters.", "receipt"
                )
            notes = rules.notes(body.get("notes"))
        except rules.RazorpayError as exc:
            return json_response(exc.body, exc.status)
        order = load("razorpay", "api.order_create.response.json")
        order.update(
            id=next_id("order_"),
            amount=amount,
            amount_due=amount,
            amount_paid=0,
            attempts=0,
            currency=currency,
            receipt=receipt,
            notes=notes,
            created_at=int(self._clock()),
        )
        with self._lock:
            self.orders[order["id"]] = order
            return json_response(order)

    def _fetch(self, kind: str) -> Callable[[web.Request], Any]:
        async def fetch(request: web.Request) -> web.Response:
            store = {
                "order": self.orders,
                "payment": self.payments,
                "refund": self.refunds,
                "dispute": self.disputes,
            }[kind]
            with self._lock:
                entity = store.get(request.match_info["id"])
                if entity is None:
                    return json_response(load("razorpay", "api.payment_fetch.error.json"), 400)
                return json_response(entity)

        return fetch

    async def _list_orders(self, request: web.Request) -> web.Response:
        try:
            query = rules.order_query(request.query)
        except rules.RazorpayError as exc:
            return json_response(exc.body, exc.status)
        with self._lock:
            # Newest first, the later-made first among orders of the same second (a stable sort).
            latest_first = list(self.orders.values())[::-1]
            newest = sorted(latest_first, key=lambda o: -o["created_at"])
            found = [o for o in newest if self._listed(o, query)]
            items = [self._expanded(o, query) for o in found[query.skip : query.skip + query.count]]
            return json_response({"entity": "collection", "count": len(items), "items": items})

    def _listed(self, order: dict[str, Any], query: rules.OrderQuery) -> bool:
        if query.receipt is not None and order["receipt"] != query.receipt:
            return False
        if query.since is not None and order["created_at"] < query.since:
            return False
        if query.until is not None and order["created_at"] > query.until:
            return False
        if query.authorized is not None:
            paid = ("authorized", "captured", "refunded")
            authorized = any(
                p["order_id"] == order["id"] and p["status"] in paid for p in self.payments.values()
            )
            return authorized == query.authorized
        return True

    def _expanded(self, order: dict[str, Any], query: rules.OrderQuery) -> dict[str, Any]:
        if not query.with_payments:
            return dict(order)
        items = [p for p in self.payments.values() if p["order_id"] == order["id"]]
        return dict(order, payments={"entity": "collection", "count": len(items), "items": items})

    async def _order_payments(self, request: web.Request) -> web.Response:
        order_id = request.match_info["id"]
        with self._lock:
            if order_id not in self.orders:
                return json_response(load("razorpay", "api.payment_fetch.error.json"), 400)
            items = [p for p in self.payments.values() if p["order_id"] == order_id]
            return json_response({"entity": "collection", "count": len(items), "items": items})

    async def _capture(self, request: web.Request) -> web.Response:
        """`POST /v1/payments/{id}/capture`: an authorized payment, for its whole amount."""
        with self._lock:
            try:
                payment = self._capturable(request.match_info["id"], rules.json_object(request))
            except rules.RazorpayError as exc:
                return json_response(exc.body, exc.status)
            return json_response(self._captured(payment))

    def _captured(self, payment: dict[str, Any]) -> dict[str, Any]:
        payment.update(status="captured", captured=True)
        order = self.orders.get(payment["order_id"])
        if order is not None:
            order.update(amount_paid=order["amount"], amount_due=0, status="paid")
        return payment

    def _capturable(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(payment_id)
        if payment is None:
            raise rules.RazorpayError("The id provided does not exist")
        rules.reject_unknown(body, rules.CAPTURE_FIELDS)
        amount = rules.amount(body.get("amount"), required=True)
        currency = body.get("currency")
        if currency is None:
            raise rules.RazorpayError("The currency field is required.", "currency")
        # Wording of these three not from a published sample; the code and field are.
        if payment["status"] == "captured" or payment["status"] == "refunded":
            raise rules.RazorpayError("This payment has already been captured")
        if payment["status"] != "authorized":
            raise rules.RazorpayError("Only payments which have been authorized can be captured")
        if amount != payment["amount"]:
            raise rules.RazorpayError(
                "Capture amount must be equal to the amount authorized", "amount"
            )
        if currency != payment["currency"]:
            raise rules.RazorpayError(
                "The currency should be same as the payment currency", "currency"
            )
        return payment

    async def _refund(self, request: web.Request) -> web.Response:
        payment_id = request.match_info["id"]
        key = request.headers.get("X-Refund-Idempotency")
        raw = request[RECORDED].body
        if key is not None and not rules.IDEMPOTENCY_KEY.match(key):
            return rules.na_error(
                "The idempotency key must be at least 10 characters long and "
                "contain only alphabets, numbers, hyphens and underscores.",
                400,
            )
        with self._lock:
            if key is not None and key in self._refund_keys:
                first_payment, first_body, refund_id = self._refund_keys[key]
                if (first_payment, first_body) != (payment_id, raw):
                    return rules.na_error(
                        "Different request with the same idempotency key has already been "
                        "processed.",
                        400,
                    )
                return json_response(self.refunds[refund_id])
            try:
                refund = self._create_refund(payment_id, rules.json_object(request))
            except rules.RazorpayError as exc:
                return json_response(exc.body, exc.status)
            if key is not None:
                self._refund_keys[key] = (payment_id, raw, refund["id"])
            return json_response(refund)

    def _create_refund(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(payment_id)
        if payment is None:
            raise rules.RazorpayError("The id provided does not exist")
        rules.reject_unknown(body, rules.REFUND_FIELDS)
        if payment["status"] not in ("captured", "refunded"):
            raise rules.RazorpayError("Only captured payments can be refunded", "payment_id")
        remaining = payment["amount"] - payment["amount_refunded"]
        amount = rules.amount(body.get("amount"), required=False) or remaining
        if remaining == 0:
            raise rules.RazorpayError("The payment has been fully refunded already", "amount")
        if amount > remaining:
            # Wording not from a published sample; the code and field are what clients read.
            raise rules.RazorpayError(
                "The refund amount provided is greater than the amount left to refund", "amount"
            )
        refund: dict[str, Any] = load("razorpay", "api.refund_create.response.json")
        refund.update(
            id=next_id("rfnd_"),
            amount=amount,
            currency=payment["currency"],
            payment_id=payment_id,
            notes=rules.notes(body.get("notes")),
            receipt=body.get("receipt"),
            created_at=int(self._clock()),
            status="pending",
            speed_requested=body.get("speed", "normal"),
            speed_processed="normal",
        )
        self._add_refunded(payment, amount)
        self.refunds[refund["id"]] = refund
        return refund
