"""Which gateways a create may use, in order, and the one try of a gateway behind its breaker.

The table (PAYMENT_ROUTES) is a JSON list of rules, the first matching the order's currency and
the create's `method` wins; its gateways are then kept if they take the amount, currency and
method (`Limits`). A create naming its gateway uses that one only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from payments import metrics
from payments.providers.gateway import (
    Checkout,
    GatewayRejected,
    Gateways,
    GatewayUnavailable,
    Limits,
    PaymentGateway,
)
from rtmn_shared.money import Currency
from rtmn_shared.resilience import CircuitBreaker, CircuitOpen

Method = Literal["card", "upi", "netbanking", "wallet"]
Routed = Literal["razorpay", "stripe"]
DEFAULT_ROUTES = (
    '[{"method": "upi", "gateways": ["razorpay"]},'
    ' {"currency": "INR", "gateways": ["razorpay", "stripe"]},'
    ' {"gateways": ["stripe", "razorpay"]}]'
)


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Currency | None = None
    method: Method | None = None
    gateways: tuple[Routed, ...] = Field(min_length=1)

    def matches(self, currency: str, method: str | None) -> bool:
        return self.currency in (None, currency) and self.method in (None, method)


_RULES = TypeAdapter(tuple[Route, ...])


@dataclass(frozen=True)
class Table:
    routes: tuple[Route, ...]

    def gateways_for(self, currency: str, method: str | None) -> tuple[str, ...]:
        # The last rule matches everything (`parse` checks it).
        return next(r.gateways for r in self.routes if r.matches(currency, method))


def parse(text: str | None, limits: dict[str, Limits]) -> Table:
    """The table, or a ValueError saying in one line what is wrong with PAYMENT_ROUTES."""
    try:
        routes = _RULES.validate_json(text or DEFAULT_ROUTES)
    except ValidationError as error:
        issue = error.errors()[0]
        where = ".".join(str(p) for p in issue["loc"]) or "the value"
        raise ValueError(
            f"PAYMENT_ROUTES is not a list of rules: {where}: {issue['msg']}"
        ) from None
    if not routes or routes[-1].currency or routes[-1].method:
        raise ValueError('PAYMENT_ROUTES must end with a rule for any order: {"gateways": [...]}')
    for n, route in enumerate(routes, 1):
        if len(set(route.gateways)) != len(route.gateways):
            raise ValueError(f"PAYMENT_ROUTES rule {n} names a gateway twice")
        for gateway in route.gateways:
            if route.method and route.method not in limits[gateway].methods:
                raise ValueError(
                    f"PAYMENT_ROUTES rule {n}: {gateway} does not take {route.method} payments"
                )
    return Table(routes)


@dataclass(frozen=True)
class Opened:
    checkout: Checkout
    latency_ms: int


@dataclass(frozen=True)
class Failure:
    """unknown: the gateway may have made the order; refused: it said no; skipped: not asked."""

    outcome: Literal["unknown", "refused", "skipped"]
    error: str
    latency_ms: int = 0
    detail: str = ""  # the gateway's words, for our logs only


class Router:
    def __init__(
        self, table: Table, gateways: Gateways, *, failures: int, reset_after: float
    ) -> None:
        self.table = table
        self.gateways = gateways
        self.breakers = {
            name: CircuitBreaker(failure_threshold=failures, reset_after=reset_after)
            for name in ("razorpay", "stripe", "upi")
        }
        for name, breaker in self.breakers.items():
            metrics.watch(breaker, name)

    def route(
        self, requested: str | None, method: str | None, amount: int, currency: str
    ) -> tuple[str, ...] | str:
        """The gateways to try in order, or why none would take the payment (our 422)."""
        names = (requested,) if requested else self.table.gateways_for(currency, method)
        refusals = [self.refusal(name, method, amount, currency) for name in names]
        fit = tuple(name for name, refused in zip(names, refusals, strict=True) if not refused)
        return fit or str(refusals[0])

    def refusal(self, gateway: str, method: str | None, amount: int, currency: str) -> str | None:
        if gateway == "upi" and currency != "INR":
            return "UPI payments are in INR only"
        limits = self.gateways.of(gateway).limits
        if method is not None and method not in limits.methods:
            return f"{gateway} does not take {method} payments"
        return limits.refusal(amount, currency)

    def first_guess(self, requested: str | None, method: str | None) -> str:
        """The gateway stored with a user's payment before its order's currency is read: INR's,
        the usual; set_gateway_order records the one actually used."""
        return requested or self.table.gateways_for("INR", method)[0]

    def resumed(self, current: str, routed: Sequence[str]) -> tuple[str, ...]:
        """A resumed payment goes on where it stopped: its gateway, then those after it."""
        rest = list(routed)
        return (current, *rest[rest.index(current) + 1 :]) if current in rest else (current,)

    async def attempt(
        self, gateway: str, call: Callable[[PaymentGateway], Awaitable[Checkout]]
    ) -> Opened | Failure:
        """One try of `gateway` through its breaker, counted and timed."""
        provider = self.gateways.of(gateway)
        breaker = self.breakers[provider.name]
        tried = await self._through(breaker, provider, call)
        outcome = "opened" if isinstance(tried, Opened) else tried.outcome
        metrics.GATEWAY_ATTEMPTS.labels(provider.name, outcome).inc()
        if outcome != "skipped":
            metrics.GATEWAY_LATENCY.labels(provider.name).observe(tried.latency_ms / 1000)
        return tried

    @staticmethod
    async def _through(
        breaker: CircuitBreaker,
        provider: PaymentGateway,
        call: Callable[[PaymentGateway], Awaitable[Checkout]],
    ) -> Opened | Failure:
        try:
            breaker.before_call()
        except CircuitOpen:
            return Failure("skipped", "CircuitOpen")
        started = time.monotonic()
        try:
            checkout = await call(provider)
        except GatewayUnavailable:
            breaker.record_failure()
            return Failure("unknown", "GatewayUnavailable", _ms(started))
        except GatewayRejected as error:
            breaker.record_success()  # it answered
            return Failure("refused", "GatewayRejected", _ms(started), str(error))
        except BaseException:
            breaker.record_failure()  # never leave a half-open probe in flight
            raise
        breaker.record_success()
        return Opened(checkout, _ms(started))


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
