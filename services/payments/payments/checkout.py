"""Creating a payment and confirming it from the checkout callback."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from payments import attempt_store, key_store, order_store, orders, store, upi
from payments.domain import Authorized
from payments.idempotency import RELEASE_WITHIN_SECONDS, Reply, earlier_request
from payments.key_store import Key
from payments.order_store import Order
from payments.providers.gateway import (
    Checkout,
    GatewayRejected,
    Gateways,
    GatewayUnavailable,
    PaymentGateway,
)
from payments.routing import Failure, Opened, Router
from payments.schemas import CreatedPayment, CreatePayment, VerifyPayment
from payments.store import PaymentRow
from payments.transitions import apply_signal
from rtmn_shared.db import Pool, write_through_outages
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.ratelimit import Limit, RateLimiter

log = logging.getLogger(__name__)


def new_payment_id() -> str:
    # 36 characters: within Razorpay's 40 for a receipt and its 256 for a note.
    return f"pmt_{uuid.uuid4().hex}"


# How often a create looks again when a racing one changed the order's payments under it.
_LOOKS = 5


def route(router: Router, request: CreatePayment, amount: int, currency: str) -> tuple[str, ...]:
    """The gateways to try, in order; what none would take is our 422 instead of their 502."""
    chosen = router.route(request.gateway, request.method, amount, currency)
    if isinstance(chosen, str):
        raise Problem(422, chosen)
    return chosen


async def create(
    key: Key | None,
    user_id: str,
    request: CreatePayment,
    terms: Order | None,
    *,
    pool: Pool,
    router: Router,
    limiter: RateLimiter,
    limit: Limit,
) -> Reply:
    """Stores the payment for the order, claiming the key in the same statement, then asks the
    routed gateways in turn for its order and records it with the key's answer. A key that made
    a payment already resumes it; an order with an open payment answers with that one (200)."""
    unavailable = router.gateways.unavailable(request.gateway) if request.gateway else None
    if unavailable is not None:
        # A configuration fault, not the caller's: nothing is stored, no gateway is asked.
        raise Problem(503, f"{request.gateway} payments are not configured: {unavailable}")
    first = route(router, request, terms.amount, terms.currency)[0] if terms else None
    # A service's creates are trusted; a user's are limited.
    limited = terms is None
    if key is None and limited:
        await limiter.check("payments-create", user_id, limit)
    gateway = first or router.first_guess(request.gateway, request.method)
    stored = await _stored(pool, key, user_id, request, terms, gateway)
    if isinstance(stored, Reply):
        return stored
    payment, resumed, status = stored
    if resumed:
        chosen = router.route(request.gateway, request.method, payment.amount, payment.currency)
        routed = router.resumed(payment.gateway, chosen if isinstance(chosen, tuple) else ())
    else:
        try:
            routed = route(router, request, payment.amount, payment.currency)
        except Problem:
            await _withdraw(pool, payment, key)
            raise
        if key is not None and limited:
            # Only a create that makes a payment counts against the limit, never a retry.
            await _within_limit(pool, key, payment, limiter, limit)
    return await open_order(
        pool, router, payment, key, routed=routed, earlier_try=resumed, status=status
    )


async def _stored(
    pool: Pool,
    key: Key | None,
    user_id: str,
    request: CreatePayment,
    terms: Order | None,
    gateway: str,
) -> tuple[PaymentRow, bool, int] | Reply:
    """The payment stored now (201); or (resumed: True) the one an earlier request with the key
    made (201), or the order's open payment (200); or an earlier request's answer, to replay."""
    async with pool.acquire() as conn:
        for _ in range(_LOOKS):
            payment_id = new_payment_id()
            stored = await order_store.insert_payment(
                conn, payment_id, user_id, request.order_id, gateway, terms=terms, key=key
            )
            if stored is not None:
                return stored, False, 201
            if key is not None:
                record = await key_store.earlier_claim(conn, key)
                if record is None:
                    continue  # released meanwhile: claim it afresh
                if record.resource_id != payment_id:  # claimed before this request
                    earlier = earlier_request(record, key)
                    if isinstance(earlier, Reply):
                        return earlier
                    payment = await store.get_payment(conn, earlier)
                    assert payment is not None
                    return payment, True, 201
            state = await order_store.state_of(conn, request.order_id)
            open_payment = await orders.open_payment(conn, state, user_id, terms)
            if key is not None:
                await order_store.settle_claim(
                    conn, key, payment_id, open_payment.id if open_payment else None
                )
            orders.refuse(state, user_id, terms)
            if open_payment is not None:
                return open_payment, True, 200
    raise Problem(409, "the order's payments kept changing; retry", headers={"Retry-After": "1"})


async def _withdraw(pool: Pool, payment: PaymentRow, key: Key | None) -> None:
    await write_through_outages(
        pool,
        lambda conn: store.withdraw_payment(conn, payment.id, key),
        within=RELEASE_WITHIN_SECONDS,
        one_statement=True,
    )


async def _within_limit(
    pool: Pool, key: Key, payment: PaymentRow, limiter: RateLimiter, limit: Limit
) -> None:
    """The user's create limit, once the key is known to be new; over it, the payment and the
    key's claim are withdrawn before the 429 (waiting out a short database outage)."""
    try:
        await limiter.check("payments-create", key.user_id, limit)
    except BaseException:
        await _withdraw(pool, payment, key)
        raise


async def gateway_order(
    gateway: PaymentGateway, payment: PaymentRow, *, earlier_try: bool
) -> Checkout:
    """The gateway's order for `payment`. After a try whose answer was lost, the order that try
    may have made is looked for first, so that one payment never has two orders to pay."""
    new = payment.new_payment()
    if payment.gateway_order_id is None and earlier_try:
        found = await gateway.find(new)
        if found is not None:
            return found
    return await gateway.open(new, payment.gateway_order_id)


async def open_order(
    pool: Pool,
    router: Router,
    payment: PaymentRow,
    key: Key | None,
    *,
    routed: Sequence[str],
    earlier_try: bool,
    status: int = 201,
) -> Reply:
    """Asks the routed gateways in turn for the payment's order until one opens it, then records
    it, its attempt and the key's answer at once. A try whose outcome is unknown or whose breaker
    is open moves the payment on to the next gateway (a refusal does not); an order recorded
    already is that order, whatever the breakers say."""
    if payment.gateway_order_id is not None:
        return await _recorded(pool, router, payment, key, status)
    failure = Failure("skipped", "no gateway")
    for n, gateway in enumerate(routed):
        looked_for = earlier_try and gateway == payment.gateway
        tried = await router.attempt(
            gateway, functools.partial(gateway_order, payment=payment, earlier_try=looked_for)
        )
        if isinstance(tried, Opened):
            checkout, ms = tried.checkout, tried.latency_ms
            return await _record(pool, router, payment, gateway, checkout, ms, key, status)
        failure = tried
        following = routed[n + 1] if n + 1 < len(routed) and tried.outcome != "refused" else None
        async with pool.acquire() as conn:
            moved = await attempt_store.failed(
                conn, payment.id, gateway, tried, following or gateway
            )
        if following is None or not moved:
            break
        log.warning("payment %s: %s %s; trying %s", payment.id, gateway, tried.outcome, following)
    if failure.outcome == "refused":
        # The gateway's words are for our logs: they may name its internals or our account.
        log.warning("payment %s: the gateway refused the order: %s", payment.id, failure.detail)
        raise Problem(502, "the payment gateway refused the order")
    # The gateway may have made the order: reconciliation (or a retry with the key) settles it.
    raise _unanswered(payment)


async def _recorded(
    pool: Pool, router: Router, payment: PaymentRow, key: Key | None, status: int
) -> Reply:
    """The order a resumed payment holds already: not a try (nor a breaker's business)."""
    try:
        checkout = await gateway_order(
            router.gateways.of(payment.gateway), payment, earlier_try=False
        )
    except GatewayUnavailable:
        raise _unanswered(payment) from None
    except GatewayRejected as error:
        log.warning("payment %s: the gateway refused its order: %s", payment.id, error)
        raise Problem(502, "the payment gateway refused the order") from None
    return await _record(pool, router, payment, payment.gateway, checkout, None, key, status)


def _unanswered(payment: PaymentRow) -> Problem:
    return Problem(
        503,
        "the payment gateway did not answer; retry with the same Idempotency-Key",
        headers={"Retry-After": "5"},
        payment_id=payment.id,
    )


async def _record(
    pool: Pool,
    router: Router,
    payment: PaymentRow,
    gateway: str,
    checkout: Checkout,
    latency_ms: int | None,
    key: Key | None,
    status: int,
) -> Reply:
    """Records the order, with its try (`latency_ms`; None: not a try) and the key's answer."""
    ours = checkout.gateway_order_id
    body = _created(payment, gateway, checkout, ours)
    async with pool.acquire() as conn:
        kept = await store.set_gateway_order(
            conn, payment.id, ours, key, status, body, gateway=gateway, latency_ms=latency_ms
        )
        if kept is None:
            raise Problem(
                409, "a concurrent request with this Idempotency-Key withdrew the payment"
            )
        if kept == ours:
            return Reply(status, body)
        # A racing request's order was recorded first: that one is kept, perhaps at another gateway.
        now = await store.get_payment(conn, payment.id)
    assert now is not None
    if now.gateway != gateway or checkout.upi is not None:  # its checkout, or its QR code
        try:
            checkout = await router.gateways.of(now.gateway).open(now.new_payment(), kept)
        except (GatewayUnavailable, GatewayRejected):
            raise _unanswered(payment) from None
    body = _created(now, now.gateway, checkout, kept)
    if key is not None:
        async with pool.acquire() as conn:
            await key_store.complete_key(conn, key, status, body)
    return Reply(status, body)


def _created(payment: PaymentRow, gateway: str, checkout: Checkout, kept: str) -> dict[str, Any]:
    client = {k: kept if v == checkout.gateway_order_id else v for k, v in checkout.client.items()}
    return CreatedPayment(
        payment_id=payment.id,
        status=payment.status.value,
        amount=payment.amount,
        currency=payment.currency,
        gateway=gateway,
        gateway_order_id=kept,
        checkout=client,
        upi=upi.view(payment.id, checkout.upi) if checkout.upi is not None else None,
    ).model_dump(mode="json")


async def verify(
    unit: UnitOfWork, gateways: Gateways, key_secret: str, user_id: str, request: VerifyPayment
) -> PaymentRow:
    """The checkout callback: signed by Razorpay over *our* stored order id and its payment id."""
    async with unit.pool.acquire() as conn:
        payment = await store.by_gateway_order(conn, request.razorpay_order_id)
    if payment is None or payment.user_id != user_id or payment.gateway_order_id is None:
        raise Problem(404, "no such payment")
    message = f"{payment.gateway_order_id}|{request.razorpay_payment_id}".encode()
    expected = hmac.new(key_secret.encode(), message, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, request.razorpay_signature.encode("ascii", "replace")):
        raise Problem(400, "the payment signature does not match")
    # Ask the gateway what happened; if it does not answer, the signature proves authorisation.
    try:
        signal = await gateways.of(payment.gateway).status(payment.gateway_order_id)
    except (GatewayUnavailable, GatewayRejected):
        signal = None
    if signal is None:
        signal = Authorized(request.razorpay_payment_id, payment.amount, payment.currency)
    async with unit.transaction() as conn:
        locked = await store.get_payment(conn, payment.id, lock=True)
        assert locked is not None
        await apply_signal(conn, locked, signal)
        final = await store.get_payment(conn, payment.id)
    assert final is not None
    return final
