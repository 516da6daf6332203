"""A gateway whose settings are missing: it takes no payment and says why, never a sandbox."""

from __future__ import annotations

from payments.domain import Signal
from payments.providers.gateway import (
    CaptureRequest,
    Checkout,
    GatewayUnavailable,
    Limits,
    NewPayment,
    PaymentGateway,
    RefundRequest,
    RefundState,
    UpiQr,
)


class Unconfigured:
    live = False
    idempotent_open = False  # it opens nothing
    closes_orders = False

    def __init__(self, name: str, limits: Limits, reason: str, taken: PaymentGateway) -> None:
        self.name, self.limits, self.reason = name, limits, reason
        # Money already taken is still captured, voided and refunded through its gateway.
        self._taken = taken

    def _refused(self) -> GatewayUnavailable:
        return GatewayUnavailable(f"{self.name} is not configured: {self.reason}")

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        raise self._refused()

    async def find(self, payment: NewPayment) -> Checkout | None:
        raise self._refused()

    async def status(self, gateway_order_id: str) -> Signal | None:
        raise self._refused()

    async def qr_code(self, gateway_order_id: str) -> UpiQr:
        raise self._refused()

    async def close(self, gateway_order_id: str) -> None:
        raise self._refused()

    async def refund(self, request: RefundRequest) -> RefundState:
        return await self._taken.refund(request)

    async def refund_status(self, gateway_refund_id: str) -> RefundState:
        return await self._taken.refund_status(gateway_refund_id)

    async def capture(self, request: CaptureRequest) -> Signal:
        return await self._taken.capture(request)

    async def void(self, request: CaptureRequest) -> None:
        await self._taken.void(request)
