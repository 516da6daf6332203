"""Creating a payment and confirming it from the checkout callback."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any

from payments import key_store, order_store, orders, store, upi
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


def refusal(gateways: Gateways, gateway: str, amount: int, currency: str) -> str | None:
    """What the gateway would refuse, said as our 422 instead of its 502."""
    if gateway == "upi" and currency != "INR":
        return "UPI payments are in INR only"
    return gateways.of(gateway).limits.refusal(amount, currency)


async def create(
    key: Key | None,
    user_id: str,
    request: CreatePayment,
    terms: Order | None,
    *,
    pool: Pool,
    gateways: Gateways,
    limiter: RateLimiter,
    limit: Limit,
) -> Reply:
    """Stores the payment for the order, claiming the key in the same statement, then asks the
    gateway for its order and records it with the key's answer. A key that made a payment
    already resumes it; an order with an open payment answers with that one (200)."""
    unavailable = gateways.unavailable(request.gateway)
    if unavailable is not None:
        # A configuration fault, not the caller's: nothing is stored, no gateway is asked.
        raise Problem(503, f"{request.gateway} payments are not configured: {unavailable}")
    if terms is not None:
        refused = refusal(gateways, request.gateway, terms.amount, terms.currency)
        if refused is not None:
            raise Problem(422, refused)
    # A service's creates are trusted; a user's are limited.
    limited = terms is None
    if key is None and limited:
        await limiter.check("payments-create", user_id, limit)
    stored = await _stored(pool, key, user_id, request, terms)
    if isinstance(stored, Reply):
        return stored
    payment, resumed, status = stored
    if not resumed:
        refused = refusal(gateways, payment.gateway, payment.amount, payment.currency)
        if refused is not None:
            await _withdraw(pool, payment, key)
            raise Problem(422, refused)
        if key is not None and limited:
            # Only a create that makes a payment counts against the limit, never a retry.
            await _within_limit(pool, key, payment, limiter, limit)
    return await open_order(pool, gateways, payment, key, earlier_try=resumed, status=status)


async def _stored(
    pool: Pool, key: Key | None, user_id: str, request: CreatePayment, terms: Order | None
) -> tuple[PaymentRow, bool, int] | Reply:
    """The payment stored now (201); or (resumed: True) the one an earlier request with the key
    made (201), or the order's open payment (200); or an earlier request's answer, to replay."""
    async with pool.acquire() as conn:
        for _ in range(_LOOKS):
            payment_id = new_payment_id()
            stored = await order_store.insert_payment(
                conn, payment_id, user_id, request.order_id, request.gateway, terms=terms, key=key
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
    gateways: Gateways,
    payment: PaymentRow,
    key: Key | None,
    *,
    earlier_try: bool,
    status: int = 201,
) -> Reply:
    """Asks the gateway for the payment's order, then records it and the key's answer at once."""
    try:
        gateway = gateways.of(payment.gateway)
        checkout = await gateway_order(gateway, payment, earlier_try=earlier_try)
    except GatewayUnavailable:
        # The gateway may have made the order: reconciliation (or a retry with the key) settles it.
        raise Problem(
            503,
            "the payment gateway did not answer; retry with the same Idempotency-Key",
            headers={"Retry-After": "5"},
            payment_id=payment.id,
        ) from None
    except GatewayRejected as error:
        # The gateway's words are for our logs: they may name its internals or our account.
        log.warning("payment %s: the gateway refused the order: %s", payment.id, error)
        raise Problem(502, "the payment gateway refused the order") from None
    ours = checkout.gateway_order_id
    body = _created(payment, checkout, ours)
    async with pool.acquire() as conn:
        kept = await store.set_gateway_order(conn, payment.id, ours, key, status, body)
        if kept is None:
            raise Problem(
                409, "a concurrent request with this Idempotency-Key withdrew the payment"
            )
    if kept != ours:  # a racing request's order was recorded first: that one is kept
        body = await _kept(gateway, payment, checkout, kept)
        if key is not None:
            async with pool.acquire() as conn:
                await key_store.complete_key(conn, key, status, body)
    return Reply(status, body)


async def _kept(
    gateway: PaymentGateway, payment: PaymentRow, checkout: Checkout, kept: str
) -> dict[str, Any]:
    """The answer for the order a racing request recorded; a UPI one names that QR code."""
    if checkout.upi is None:
        return _created(payment, checkout, kept)
    try:
        return _created(payment, await gateway.open(payment.new_payment(), kept), kept)
    except (GatewayUnavailable, GatewayRejected):
        raise Problem(503, "the payment gateway did not answer; retry") from None


def _created(payment: PaymentRow, checkout: Checkout, kept: str) -> dict[str, Any]:
    client = {k: kept if v == checkout.gateway_order_id else v for k, v in checkout.client.items()}
    return CreatedPayment(
        payment_id=payment.id,
        status=payment.status.value,
        amount=payment.amount,
        currency=payment.currency,
        gateway=payment.gateway,
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
