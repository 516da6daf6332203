"""The gateway used when no credentials are set: it records, says so, and never confirms."""

from __future__ import annotations

import logging
import uuid

from payments.domain import RefundStatus, Signal
from payments.providers.gateway import (
    Checkout,
    Limits,
    NewPayment,
    RefundRequest,
    RefundState,
)

log = logging.getLogger(__name__)


class SandboxGateway:
    live = False
    idempotent_open = False

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits  # the live gateway's, so the sandbox refuses what it would
        self.orders: dict[str, NewPayment] = {}
        self.refunds: dict[str, RefundRequest] = {}

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        order_id = existing or f"sandbox_order_{uuid.uuid4().hex[:16]}"
        self.orders[order_id] = payment
        log.info("sandbox %s: would create an order for payment %s", self.name, payment.payment_id)
        return self._checkout(order_id)

    @staticmethod
    def _checkout(order_id: str) -> Checkout:
        return Checkout(order_id, {"sandbox": "true", "gateway_order_id": order_id})

    async def find(self, payment: NewPayment) -> Checkout | None:
        for order_id, made in self.orders.items():
            if made.payment_id == payment.payment_id:
                return self._checkout(order_id)
        return None

    async def status(self, gateway_order_id: str) -> Signal | None:
        # A sandbox never pretends a payment was made.
        return None

    async def refund(self, request: RefundRequest) -> RefundState:
        refund_id = f"sandbox_refund_{request.refund_id}"
        self.refunds[refund_id] = request
        log.info("sandbox %s: would refund %d of %s", self.name, request.amount, request.payment_id)
        return RefundState(refund_id, RefundStatus.PENDING)

    async def refund_status(self, gateway_refund_id: str) -> RefundState:
        return RefundState(gateway_refund_id, RefundStatus.PENDING)
