"""The gateway used when no credentials are set: it records, says so, and never confirms."""

from __future__ import annotations

import logging
import uuid

from payments.domain import RefundStatus, Signal
from payments.providers.gateway import (
    CaptureRequest,
    Checkout,
    GatewayRejected,
    Limits,
    NewPayment,
    RefundRequest,
    RefundState,
    UpiQr,
)

log = logging.getLogger(__name__)


class SandboxGateway:
    live = False
    idempotent_open = False
    closes_orders = True

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits  # the live gateway's, so the sandbox refuses what it would
        self.orders: dict[str, NewPayment] = {}
        self.refunds: dict[str, RefundRequest] = {}
        self.closed: set[str] = set()

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        order_id = existing or f"sandbox_order_{uuid.uuid4().hex[:16]}"
        self.orders[order_id] = payment
        log.info("sandbox %s: would create an order for payment %s", self.name, payment.payment_id)
        return self._checkout(order_id)

    def _checkout(self, order_id: str) -> Checkout:
        upi = self._qr(order_id) if self.name == "upi" else None
        return Checkout(order_id, {"sandbox": "true", "gateway_order_id": order_id}, upi)

    def _qr(self, order_id: str) -> UpiQr:
        # No image and no link: nothing a customer could pay.
        return UpiQr(order_id, None, None, None, "closed" if order_id in self.closed else "sandbox")

    async def qr_code(self, gateway_order_id: str) -> UpiQr:
        return self._qr(gateway_order_id)

    async def close(self, gateway_order_id: str) -> None:
        self.closed.add(gateway_order_id)
        log.info("sandbox %s: would close order %s", self.name, gateway_order_id)

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

    async def capture(self, request: CaptureRequest) -> Signal:
        # Nothing is ever authorized here (`status` never says so), so nothing can be captured.
        raise GatewayRejected("the sandbox holds no authorization to capture")

    async def void(self, request: CaptureRequest) -> None:
        log.info("sandbox %s: would void payment %s", self.name, request.payment_id)
