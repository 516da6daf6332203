"""UPI through Razorpay's QR Codes API: one single-use, fixed-amount QR code per payment.

Razorpay hosts the code and receives the money, so it can confirm it (`qr_code.credited`, or the
code's payments for reconciliation). Our payment id rides in the code's notes: a create whose
answer was lost is found again by listing the codes made since the payment was stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from payments.domain import Signal
from payments.providers.gateway import UPI_LIMITS, Checkout, NewPayment, UpiQr
from payments.providers.razorpay.client import RazorpayGateway
from payments.providers.razorpay.wire import Payments, QrCode, QrCodes, settled

log = logging.getLogger(__name__)

QR_CODES = "/payments/qr_codes"
# Razorpay refuses a close_by less than 2 minutes ahead and holds one to at most 2 hours.
MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS = 180, 7200
# How far back, and how many pages of 100, a lost create's code is looked for.
_FIND_SKEW = timedelta(minutes=5)
_FIND_PAGES = 10


class RazorpayUpiGateway(RazorpayGateway):
    """Razorpay's client with QR codes for orders; refunds are a payment's, as for orders."""

    name = "upi"
    limits = UPI_LIMITS
    closes_orders = True  # a closed QR code takes no payment

    def __init__(
        self,
        session: aiohttp.ClientSession,
        key_id: str,
        key_secret: str,
        *,
        timeout: float,
        payee_name: str,
        lifetime_seconds: int,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(session, key_id, key_secret, timeout=timeout, base_url=base_url)
        self._payee_name = payee_name
        self._lifetime = lifetime_seconds
        self._clock = clock

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        if existing is not None and existing.startswith("order_"):
            return await super().open(payment, existing)  # made before UPI had QR codes
        if existing is not None:
            return _checkout(await self._qr(existing))
        body = {
            "type": "upi_qr",
            "name": self._payee_name,
            "usage": "single_use",
            "fixed_amount": True,
            "payment_amount": payment.amount,
            "description": f"Order {payment.order_number}",
            "close_by": int(self._clock()) + self._lifetime,
            "notes": {
                "payment_id": payment.payment_id,
                "order_id": payment.order_id,
                "order_number": payment.order_number,
                "merchant_id": payment.merchant_id,
                "user_id": payment.user_id,
            },
        }
        return _checkout(await self._call("POST", QR_CODES, QrCode, body=body))

    async def find(self, payment: NewPayment) -> Checkout | None:
        # No filter by notes: the codes made since the payment was stored, newest first.
        since = payment.created_at or datetime.now(UTC) - timedelta(seconds=self._lifetime)
        query = {"from": str(int((since - _FIND_SKEW).timestamp())), "count": "100"}
        mine: list[QrCode] = []
        for page in range(_FIND_PAGES):
            listed = await self._call(
                "GET", QR_CODES, QrCodes, query={**query, "skip": str(page * 100)}
            )
            mine += [c for c in listed.items if c.ours(payment.payment_id)]
            if len(listed.items) < 100:
                break
        if not mine:
            return None
        if len(mine) > 1:
            log.warning(
                "payment %s has %d Razorpay QR codes; keeping the first",
                payment.payment_id,
                len(mine),
            )
        return _checkout(mine[-1])

    async def status(self, gateway_order_id: str) -> Signal | None:
        if gateway_order_id.startswith("order_"):
            return await super().status(gateway_order_id)
        path = f"{QR_CODES}/{gateway_order_id}/payments"
        return settled((await self._call("GET", path, Payments, query={"count": "100"})).items)

    async def qr_code(self, gateway_order_id: str) -> UpiQr:
        return (await self._qr(gateway_order_id)).upi()

    async def close(self, gateway_order_id: str) -> None:
        code = await self._qr(gateway_order_id)
        if code.status != "active":
            return
        await self._call("POST", f"{QR_CODES}/{gateway_order_id}/close", QrCode, body={})

    async def _qr(self, qr_id: str) -> QrCode:
        return await self._call("GET", f"{QR_CODES}/{qr_id}", QrCode)


def _checkout(code: QrCode) -> Checkout:
    client = {"qr_code_id": code.id}
    if code.image_url:
        client["image_url"] = code.image_url
    return Checkout(code.id, client, code.upi())
