"""Razorpay's REST API over one shared aiohttp session: Orders, an order's payments, Refunds.

Basic auth with the key id and secret, JSON both ways, an explicit timeout on every call. A 4xx
with Razorpay's error body is a refusal (its description, never the body); a 5xx, a 408, 409
(an idempotent refund still being made) or 429, a timeout, a dropped connection or a reply that
is not the JSON we expect leaves the outcome unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError

from payments.domain import RefundStatus, Signal
from payments.providers.gateway import (
    RAZORPAY_LIMITS,
    CaptureRequest,
    Checkout,
    GatewayRejected,
    GatewayUnavailable,
    NewPayment,
    RefundRequest,
    RefundState,
)
from payments.providers.razorpay.wire import (
    ErrorReply,
    Order,
    Orders,
    Payment,
    Payments,
    Refund,
    settled,
    signal,
)

log = logging.getLogger(__name__)

API_BASE = "https://api.razorpay.com"
# Worth asking again: a request timeout, an idempotent refund still in progress, rate limiting.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
Entity = TypeVar("Entity", bound=BaseModel)

_REFUND_STATUS = {
    "pending": RefundStatus.PENDING,
    "created": RefundStatus.PENDING,
    "processed": RefundStatus.PROCESSED,
    "failed": RefundStatus.FAILED,
}


# -- the gateway --------------------------------------------------------------------------------


class RazorpayGateway:
    name = "razorpay"
    live = True
    idempotent_open = False
    closes_orders = False  # its orders cannot be cancelled
    limits = RAZORPAY_LIMITS

    def __init__(
        self,
        session: aiohttp.ClientSession,
        key_id: str,
        key_secret: str,
        *,
        timeout: float,
        base_url: str | None = None,
    ) -> None:
        self.key_id = key_id
        self._session = session
        self._api = (base_url or API_BASE).rstrip("/") + "/v1"
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(key_id, key_secret),
            "Content-Type": "application/json",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        if existing is not None:
            return self._checkout(existing)
        body = {
            "amount": payment.amount,
            "currency": payment.currency,
            "receipt": payment.payment_id,
            "notes": {
                "payment_id": payment.payment_id,
                "order_id": payment.order_id,
                "order_number": payment.order_number,
                "merchant_id": payment.merchant_id,
                "user_id": payment.user_id,
            },
        }
        order = await self._call("POST", "/orders", Order, body=body)
        return self._checkout(order.id)

    async def find(self, payment: NewPayment) -> Checkout | None:
        # Orders carry our payment id as their receipt; Razorpay lists them newest first.
        listed = await self._call("GET", "/orders", Orders, query={"receipt": payment.payment_id})
        mine = [o for o in listed.items if o.receipt == payment.payment_id]
        if not mine:
            return None
        if len(mine) > 1:
            log.warning(
                "payment %s has %d Razorpay orders; keeping the first",
                payment.payment_id,
                len(mine),
            )
        return self._checkout(mine[-1].id)

    def _checkout(self, order_id: str) -> Checkout:
        return Checkout(order_id, {"key_id": self.key_id, "razorpay_order_id": order_id})

    async def status(self, gateway_order_id: str) -> Signal | None:
        listed = await self._call("GET", f"/orders/{gateway_order_id}/payments", Payments)
        return settled(listed.items)

    async def refund(self, request: RefundRequest) -> RefundState:
        if request.gateway_payment_id is None:
            raise GatewayRejected("the payment has no Razorpay payment id to refund")
        refund = await self._call(
            "POST",
            f"/payments/{request.gateway_payment_id}/refund",
            Refund,
            body={
                "amount": request.amount,
                "notes": {"refund_id": request.refund_id, "payment_id": request.payment_id},
            },
            # Razorpay makes the refund once per key, so a retry after a timeout is safe.
            headers={"X-Refund-Idempotency": request.refund_id},
        )
        return _refund_state(refund)

    async def refund_status(self, gateway_refund_id: str) -> RefundState:
        return _refund_state(await self._call("GET", f"/refunds/{gateway_refund_id}", Refund))

    async def capture(self, request: CaptureRequest) -> Signal:
        if request.gateway_payment_id is None:
            raise GatewayRejected("the payment has no Razorpay payment id to capture")
        # Razorpay refuses a second capture; the caller then reads what it knows (`status`).
        payment = await self._call(
            "POST",
            f"/payments/{request.gateway_payment_id}/capture",
            Payment,
            body={"amount": request.amount, "currency": request.currency},
        )
        return signal(payment.root, payment.root["status"])

    async def void(self, request: CaptureRequest) -> None:
        # Razorpay has no void: an authorization not captured within 3 days of its creation is
        # refunded to the customer by Razorpay itself ("Payment Capture Settings").
        log.info("razorpay: payment %s voided here; Razorpay releases it", request.payment_id)

    async def close(self, gateway_order_id: str) -> None:
        # Razorpay orders cannot be cancelled; a late payment of one is captured all the same.
        return None

    async def _call(
        self,
        method: str,
        path: str,
        reply: type[Entity],
        *,
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Entity:
        try:
            async with self._session.request(
                method,
                self._api + path,
                data=None if body is None else orjson.dumps(body),
                params=query,
                headers={**self._headers, **headers} if headers else self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status, raw = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _unavailable(method, path, type(error).__name__) from None
        if 200 <= status < 300:
            try:
                return reply.model_validate_json(raw)
            except ValidationError:
                raise _unavailable(method, path, f"{status} with an unexpected body") from None
        if 400 <= status < 500 and status not in RETRYABLE_STATUSES:
            if status == 401:
                log.error("razorpay refused our key (401): check RAZORPAY_KEY_ID/KEY_SECRET")
            try:
                refusal = ErrorReply.model_validate_json(raw).error
            except ValidationError:
                raise _unavailable(method, path, f"{status} without Razorpay's error") from None
            raise GatewayRejected(refusal.description[:500])
        raise _unavailable(method, path, str(status))


def _unavailable(method: str, path: str, reason: str) -> GatewayUnavailable:
    log.warning("razorpay %s %s: %s", method, path, reason)
    return GatewayUnavailable(reason)


def _refund_state(refund: Refund) -> RefundState:
    return RefundState(refund.id, _REFUND_STATUS.get(refund.status, RefundStatus.PENDING))
