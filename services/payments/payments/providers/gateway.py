"""The one interface every payment gateway sits behind, and what it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    frozenset({"card", "upi", "netbanking", "wallet"}),
)
STRIPE_LIMITS = Limits(frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "AUD", "CAD"}), 50)


@dataclass(frozen=True)
class NewPayment:
    payment_id: str
    user_id: str
    order_id: str
    order_number: str
    merchant_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Checkout:
    gateway_order_id: str
    # What the client needs to pay: Razorpay's key id + order id, or Stripe's client secret.
    client: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
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


class Gateways:
    """The gateway behind each `gateway` value of a payment; UPI is collected through Razorpay."""

    def __init__(self, razorpay: PaymentGateway, stripe: PaymentGateway) -> None:
        self._by_name = {"razorpay": razorpay, "upi": razorpay, "stripe": stripe}

    def of(self, gateway: str) -> PaymentGateway:
        return self._by_name[gateway]

    def modes(self) -> dict[str, str]:
        return {g.name: "live" if g.live else "sandbox" for g in self._by_name.values()}
