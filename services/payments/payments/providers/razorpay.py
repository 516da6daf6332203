"""Razorpay on its official SDK: blocking, so every call runs in a thread with its own timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError

from payments.domain import Authorized, Captured, Failed, RefundStatus, Signal
from payments.providers.gateway import (
    RAZORPAY_LIMITS,
    Checkout,
    GatewayRejected,
    GatewayUnavailable,
    NewPayment,
    RefundRequest,
    RefundState,
)

log = logging.getLogger(__name__)

_REFUND_STATUS = {
    "pending": RefundStatus.PENDING,
    "created": RefundStatus.PENDING,
    "processed": RefundStatus.PROCESSED,
    "failed": RefundStatus.FAILED,
}


class RazorpayGateway:
    name = "razorpay"
    live = True
    limits = RAZORPAY_LIMITS

    def __init__(
        self, key_id: str, key_secret: str, *, timeout: float, base_url: str | None = None
    ) -> None:
        options = {"base_url": base_url} if base_url else {}
        self.key_id = key_id
        self.timeout = timeout
        self._client = razorpay.Client(auth=(key_id, key_secret), **options)

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        if existing is not None:
            return self._checkout(existing)
        order = await self._call(
            self._client.order.create,
            {
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
            },
        )
        return self._checkout(order["id"])

    async def find(self, payment: NewPayment) -> Checkout | None:
        # Orders carry our payment id as their receipt; Razorpay lists them newest first.
        listed = await self._call(self._client.order.all, {"receipt": payment.payment_id})
        mine = [o for o in listed.get("items") or [] if o.get("receipt") == payment.payment_id]
        if not mine:
            return None
        if len(mine) > 1:
            log.warning(
                "payment %s has %d Razorpay orders; keeping the first",
                payment.payment_id,
                len(mine),
            )
        return self._checkout(mine[-1]["id"])

    def _checkout(self, order_id: str) -> Checkout:
        return Checkout(order_id, {"key_id": self.key_id, "razorpay_order_id": order_id})

    async def status(self, gateway_order_id: str) -> Signal | None:
        listed = await self._call(self._client.order.payments, gateway_order_id)
        return settled(listed.get("items") or [])

    async def refund(self, request: RefundRequest) -> RefundState:
        if request.gateway_payment_id is None:
            raise GatewayRejected("the payment has no Razorpay payment id to refund")
        refund = await self._call(
            self._client.payment.refund,
            request.gateway_payment_id,
            {
                "amount": request.amount,
                "notes": {"refund_id": request.refund_id, "payment_id": request.payment_id},
            },
            # Razorpay makes the refund once per key, so a retry after a timeout is safe.
            headers={"X-Refund-Idempotency": request.refund_id},
        )
        return _refund_state(refund)

    async def refund_status(self, gateway_refund_id: str) -> RefundState:
        return _refund_state(await self._call(self._client.refund.fetch, gateway_refund_id))

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args, timeout=self.timeout, **kwargs)
        except BadRequestError as error:
            raise GatewayRejected(str(error)) from None
        except (ServerError, GatewayError, requests.RequestException, ValueError) as error:
            log.warning("razorpay call failed: %s", type(error).__name__)
            raise GatewayUnavailable(type(error).__name__) from None


def settled(items: list[dict[str, Any]]) -> Signal | None:
    """The order's outcome from its payment attempts: any capture wins, then authorisation."""
    for wanted in ("captured", "refunded", "authorized"):
        for item in items:
            if item.get("status") == wanted:
                return _signal(item)
    failed = [i for i in items if i.get("status") == "failed"]
    return _signal(max(failed, key=lambda i: i.get("created_at") or 0)) if failed else None


def _signal(item: dict[str, Any]) -> Signal:
    amount, currency = int(item["amount"]), str(item["currency"])
    if item["status"] in ("captured", "refunded"):
        return Captured(item["id"], amount, currency)
    if item["status"] == "authorized":
        return Authorized(item["id"], amount, currency)
    return Failed(item["id"], item.get("error_code"), item.get("error_description"))


def _refund_state(refund: dict[str, Any]) -> RefundState:
    return RefundState(refund["id"], _REFUND_STATUS.get(refund["status"], RefundStatus.PENDING))
