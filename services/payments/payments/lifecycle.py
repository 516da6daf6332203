"""Manual capture and void of authorized payments (`payments:capture`).

Each is decided under the payment's row lock, asked of the gateway, and ends in
`transitions.apply_signal` like every other outcome, so a webhook racing it converges on the
same state and `payment.success` is emitted once. A repeat (captured or voided already) answers
the payment as it is without asking the gateway again; the gateway refuses a second capture in
any case (Stripe replays our fixed key `rtmn-capture-<id>`; Razorpay refuses to capture a
captured payment). A refusal is followed by asking the gateway what it knows of the payment
(captured meanwhile, or the authorization lapsed), which is applied before answering.
"""

from __future__ import annotations

import logging

from payments import refund_store, store
from payments.domain import CaptureRejected, Signal, Status, Voided, capture_amount, voidable
from payments.idempotency import Claim, Reply
from payments.providers.gateway import (
    CaptureRequest,
    GatewayRejected,
    Gateways,
    GatewayUnavailable,
    PaymentGateway,
)
from payments.schemas import CapturePayment, PaymentView
from payments.store import PaymentRow
from payments.transitions import apply_signal
from rtmn_shared.db import Connection, Pool
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.problems import Problem

log = logging.getLogger(__name__)


async def capture(
    claim: Claim, payment_id: str, request: CapturePayment, *, unit: UnitOfWork, gateways: Gateways
) -> Reply:
    async with claim.pool.acquire() as conn, conn.transaction():
        payment = await _locked(conn, payment_id)
        gateway = gateways.of(payment.gateway)
        try:
            amount = capture_amount(
                payment.domain(), request.amount, partial=gateway.limits.partial_capture
            )
        except CaptureRejected as error:
            raise Problem(422, str(error)) from None
        if amount is not None and amount != payment.amount:
            await store.request_capture(conn, payment.id, amount)
    if amount is not None:
        try:
            await _apply(unit, payment_id, await gateway.capture(_request(payment, amount)))
        except GatewayUnavailable:
            # It may have been captured: a repeat, the webhook or reconciliation settles it.
            raise Problem(503, "the gateway did not answer; ask again") from None
        except GatewayRejected as error:
            await _learn(unit, gateway, payment)
            answer = await _answer(claim.pool, payment_id)
            if answer.body["status"] != Status.CAPTURED:
                # The gateway's words are for our logs: they may name its internals or our account.
                log.warning("capture of %s refused by the gateway: %s", payment_id, error)
                raise Problem(502, "the payment gateway refused the capture") from None
            return answer
    return await _answer(claim.pool, payment_id)


async def void(claim: Claim, payment_id: str, *, unit: UnitOfWork, gateways: Gateways) -> Reply:
    async with claim.pool.acquire() as conn, conn.transaction():
        payment = await _locked(conn, payment_id)
        try:
            wanted = voidable(payment.domain())
        except CaptureRejected as error:
            raise Problem(422, str(error)) from None
    if wanted:
        gateway = gateways.of(payment.gateway)
        try:
            await gateway.void(_request(payment, payment.amount))
            await _apply(unit, payment_id, Voided())
        except GatewayUnavailable:
            raise Problem(503, "the gateway did not answer; ask again") from None
        except GatewayRejected as error:
            log.warning("void of %s refused by the gateway: %s", payment_id, error)
            await _learn(unit, gateway, payment)
    answer = await _answer(claim.pool, payment_id)
    if answer.body["status"] != Status.VOIDED:
        # Money arrived first (a capture won the race): it is kept, never dropped.
        raise Problem(409, f"the payment is {answer.body['status']}, not voided")
    return answer


async def _locked(conn: Connection, payment_id: str) -> PaymentRow:
    payment = await store.get_payment(conn, payment_id, lock=True)
    if payment is None:
        raise Problem(404, "no such payment")
    return payment


def _request(payment: PaymentRow, amount: int) -> CaptureRequest:
    assert payment.gateway_order_id is not None  # authorized: the gateway has its order
    return CaptureRequest(
        payment.id, payment.gateway_order_id, payment.gateway_payment_id, amount, payment.currency
    )


async def _apply(unit: UnitOfWork, payment_id: str, signal: Signal) -> None:
    async with unit.transaction() as conn:
        locked = await _locked(conn, payment_id)
        await apply_signal(conn, locked, signal)


async def _learn(unit: UnitOfWork, gateway: PaymentGateway, payment: PaymentRow) -> None:
    """After a refusal: what the gateway knows of the payment, applied (nothing if it is mute)."""
    assert payment.gateway_order_id is not None
    try:
        signal = await gateway.status(payment.gateway_order_id)
    except (GatewayUnavailable, GatewayRejected):
        return
    if signal is not None:
        await _apply(unit, payment.id, signal)


async def _answer(pool: Pool, payment_id: str) -> Reply:
    async with pool.acquire() as conn:
        payment = await store.get_payment(conn, payment_id)
        assert payment is not None
        found = await refund_store.refunds_of(conn, payment_id)
    return Reply(200, PaymentView.of(payment, found).model_dump(mode="json"))
