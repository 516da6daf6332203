"""The one interface every payment gateway sits behind, and what it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from payments.domain import RefundStatus, Signal


class GatewayUnavailable(Exception):
    """Timeout, connection failure, 5xx or a garbled reply: the outcome is unknown, not failed."""


class GatewayRejected(Exception):
    """The gateway refused the request (4xx); repeating it will not help."""


@dataclass(frozen=True)
class Limits:
    """What a gateway accepts; checked before asking it, so a bad request is our 422, not a 502."""

    currencies: frozenset[str]
    minimum: int  # minor units
    # Whether an authorization may be captured in part (Razorpay: only the order's amount).
    partial_capture: bool = False
    # How customers pay through it (a create's optional `method`); routing checks it too.
    methods: frozenset[str] = frozenset({"card"})

    def refusal(self, amount: int, currency: str) -> str | None:
        if currency not in self.currencies:
            return (
                f"{currency} is not accepted here; use one of {', '.join(sorted(self.currencies))}"
            )
        if amount < self.minimum:
            return f"the smallest amount accepted is {self.minimum} minor units of {currency}"
        return None


# Razorpay: at least 1.00 of the currency; Stripe: at least 0.50 (both in subunits).
RAZORPAY_LIMITS = Limits(
    frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "MYR"}),
    100,
    methods=frozenset({"card", "upi", "netbanking", "wallet"}),
)
STRIPE_LIMITS = Limits(
    frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "AUD", "CAD"}), 50, partial_capture=True
)
# UPI through Razorpay's QR Codes: rupees only, and Razorpay's 1.00 minimum.
UPI_LIMITS = Limits(frozenset({"INR"}), 100, methods=frozenset({"upi"}))


@dataclass(frozen=True)
class NewPayment:
    payment_id: str
    user_id: str
    order_id: str
    order_number: str
    merchant_id: str
    amount: int
    currency: str
    created_at: datetime | None = None  # where a lost try's order is looked for from


@dataclass(frozen=True)
class UpiQr:
    """A gateway's UPI QR code for one payment: the image it hosts and, where the gateway gives
    it, the `upi://pay` link the image encodes (Razorpay: an account's "image content")."""

    qr_code_id: str
    image_url: str | None
    close_by: datetime | None
    link: str | None = None
    status: str = "active"


@dataclass(frozen=True)
class Checkout:
    gateway_order_id: str
    # What the client needs to pay: Razorpay's key id + order id, or Stripe's client secret.
    client: dict[str, str] = field(default_factory=dict)
    upi: UpiQr | None = None  # a UPI payment's QR code


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
    payment_id: str
    gateway_order_id: str
    gateway_payment_id: str | None
    amount: int
    currency: str


@dataclass(frozen=True)
class CaptureRequest:
    """An operator's capture (or, without `amount`, void) of an authorized payment."""

    payment_id: str
    gateway_order_id: str
    gateway_payment_id: str | None
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundState:
    gateway_refund_id: str
    status: RefundStatus


class PaymentGateway(Protocol):
    name: str
    live: bool
    limits: Limits
    # True where repeating `open` returns the first order (Stripe's fixed key): then `open` is
    # how reconciliation looks for the order a lost try may have made, as `find` says None.
    idempotent_open: bool
    # True where `close` stops an order taking money for good (a Stripe intent, a UPI QR code);
    # False where it cannot (a Razorpay order stays payable until Razorpay lets it go).
    closes_orders: bool

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        """The gateway's order for our payment: made now, or `existing` made by an earlier try."""
        ...

    async def find(self, payment: NewPayment) -> Checkout | None:
        """The order an earlier try whose answer was lost made for our payment, if any.

        None also where `open` itself is idempotent (Stripe: our fixed idempotency key).
        """
        ...

    async def status(self, gateway_order_id: str) -> Signal | None:
        """What the gateway knows of the order's payment; None while nothing is settled."""
        ...

    async def refund(self, request: RefundRequest) -> RefundState:
        """Asks for a refund, idempotent on our refund id."""
        ...

    async def refund_status(self, gateway_refund_id: str) -> RefundState: ...

    async def capture(self, request: CaptureRequest) -> Signal:
        """Captures `amount` of an authorized payment; a repeat never captures twice."""
        ...

    async def void(self, request: CaptureRequest) -> None:
        """Releases an authorization where the gateway can; a no-op where it releases it itself."""
        ...

    async def close(self, gateway_order_id: str) -> None:
        """Stops an expired payment's order taking money where the gateway can (a UPI QR code is
        closed; a no-op where nothing can be: a payment that still arrives is captured all the
        same). Closing one closed already is no error."""
        ...


class UpiGateway(PaymentGateway, Protocol):
    """UPI collected through a gateway that sees the money: one QR code per payment."""

    async def qr_code(self, gateway_order_id: str) -> UpiQr:
        """The payment's QR code as the gateway has it now (closed once paid or expired)."""
        ...


class Gateways:
    """The gateway behind each `gateway` value of a payment; UPI is collected through Razorpay's
    QR codes. A gateway whose settings are missing has a `reason` and takes no payment."""

    def __init__(self, razorpay: PaymentGateway, stripe: PaymentGateway, upi: UpiGateway) -> None:
        self._upi = upi
        self._by_name: dict[str, PaymentGateway] = {
            "razorpay": razorpay,
            "upi": upi,
            "stripe": stripe,
        }

    def of(self, gateway: str) -> PaymentGateway:
        return self._by_name[gateway]

    def upi(self) -> UpiGateway:
        return self._upi

    def unavailable(self, gateway: str) -> str | None:
        """Why payments through `gateway` cannot be taken (its settings are missing), or None."""
        reason = getattr(self._by_name[gateway], "reason", None)
        return reason if isinstance(reason, str) else None

    def modes(self) -> dict[str, str]:
        return {name: _mode(self, name) for name in self._by_name}


def _mode(gateways: Gateways, name: str) -> str:
    reason = gateways.unavailable(name)
    if reason is not None:
        return f"not configured: {reason}"
    return "live" if gateways.of(name).live else "sandbox"
