"""Refunds: reserved under the payment's row lock, then asked of the gateway, idempotently."""

from __future__ import annotations

import logging
import uuid

from payments import refund_store, store
from payments.domain import RefundRejected, RefundStatus, refund_amount
from payments.idempotency import Claim, Reply
from payments.providers.gateway import (
    GatewayRejected,
    Gateways,
    GatewayUnavailable,
    RefundRequest,
    RefundState,
)
from payments.refund_store import RefundRow
from payments.schemas import CreateRefund, RefundView
from payments.store import PaymentRow
from payments.transitions import settle_refund
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.problems import Problem

log = logging.getLogger(__name__)


def new_refund_id() -> str:
    # Also Razorpay's X-Refund-Idempotency: at least 10 of [A-Za-z0-9_-].
    return f"rfnd_{uuid.uuid4().hex}"


async def request_refund(
    claim: Claim, payment_id: str, request: CreateRefund, *, unit: UnitOfWork, gateways: Gateways
) -> Reply:
    pool = claim.pool
    if claim.resource_id is None:
        async with pool.acquire() as conn, conn.transaction():
            payment = await store.get_payment(conn, payment_id, lock=True)
            if payment is None:
                raise Problem(404, "no such payment")
            reserved = await refund_store.reserved_for_refunds(conn, payment_id)
            try:
                amount = refund_amount(payment.domain(), reserved, request.amount)
            except RefundRejected as error:
                raise Problem(422, str(error)) from None
            refund = await refund_store.insert_refund(
                conn, new_refund_id(), payment_id, amount, request.reason
            )
            await claim.remember(conn, refund.id)
    async with pool.acquire() as conn:
        found = await refund_store.get_refund(conn, claim.resource_id or "")
        assert found is not None
        payment = await store.get_payment(conn, found.payment_id)
        assert payment is not None
    if found.status is RefundStatus.PENDING:
        found = await submit(unit, gateways, payment, found)
    return Reply(201, RefundView.of(found).model_dump(mode="json"))


async def submit(
    unit: UnitOfWork, gateways: Gateways, payment: PaymentRow, refund: RefundRow
) -> RefundRow:
    """Asks the gateway for a pending refund (again: the key is derived from our refund id).

    A gateway that does not answer leaves it pending for reconciliation.
    """
    assert payment.gateway_order_id is not None
    request = RefundRequest(
        refund.id,
        payment.id,
        payment.gateway_order_id,
        payment.gateway_payment_id,
        refund.amount,
        payment.currency,
    )
    try:
        state = await gateways.of(payment.gateway).refund(request)
    except GatewayUnavailable:
        log.warning("refund %s: the gateway did not answer; left pending", refund.id)
        return refund
    except GatewayRejected as error:
        log.warning("refund %s refused by the gateway: %s", refund.id, error)
        state = RefundState("", RefundStatus.FAILED)
    return await record(unit, refund, state)


async def record(unit: UnitOfWork, refund: RefundRow, state: RefundState) -> RefundRow:
    """Stores what the gateway said of a refund, settling it if it is final."""
    gateway_refund_id = state.gateway_refund_id or None
    async with unit.transaction() as conn:
        # The payment row first, as every refund path takes it: no lock-order deadlocks.
        found = await refund_store.lock_refund(conn, refund_id=refund.id, gateway_refund_id=None)
        assert found is not None
        payment, locked = found
        if gateway_refund_id is not None:
            await refund_store.set_gateway_refund(conn, refund.id, gateway_refund_id)
        if state.status is not RefundStatus.PENDING:
            await settle_refund(
                conn,
                payment,
                locked,
                processed=state.status is RefundStatus.PROCESSED,
                gateway_refund_id=gateway_refund_id,
            )
        else:
            await refund_store.touch_refund(conn, refund.id)
        current = await refund_store.get_refund(conn, refund.id)
    assert current is not None
    return current
