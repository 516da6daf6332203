"""A verified webhook applied atomically: delivery recorded, payment moved, event out."""

from __future__ import annotations

import logging

from payments import refund_store, store
from payments.store import Delivery, Saved
from payments.transitions import apply_signal, settle_refund
from payments.webhooks import Command, PaymentCommand, RefundCommand
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)


async def handle(unit: UnitOfWork, delivery: Delivery, command: Command) -> bool:
    """False when the provider had sent this event before: nothing changes then."""
    if isinstance(command, PaymentCommand):
        saved = await _apply_as_read(unit, delivery, command)
        if saved is not None and saved is not Saved.STALE:
            return saved is Saved.APPLIED
    async with unit.transaction() as conn:
        if isinstance(command, PaymentCommand):
            payment = await store.by_gateway_order(conn, command.gateway_order_id, lock=True)
            if payment is not None:
                saved = await apply_signal(conn, payment, command.signal, delivery=delivery)
                return saved is Saved.APPLIED
        elif isinstance(command, RefundCommand):
            found = await refund_store.lock_refund(
                conn, refund_id=command.refund_id, gateway_refund_id=command.gateway_refund_id
            )
            if found is not None:
                payment, refund = found
                return await settle_refund(
                    conn,
                    payment,
                    refund,
                    processed=command.processed,
                    gateway_refund_id=command.gateway_refund_id,
                    delivery=delivery,
                )
        fresh = await store.record_delivery(conn, delivery)
        if fresh:
            log.info(
                "webhook %s %s concerns nothing of ours", delivery.provider, delivery.event_type
            )
        return fresh


async def _apply_as_read(
    unit: UnitOfWork, delivery: Delivery, command: PaymentCommand
) -> Saved | None:
    """The common case in two statements and no transaction of our own: the payment read, then
    the outcome written by one statement that locks the row and checks it is still as read.
    None: not one of our payments; STALE: it changed in between (a racing delivery)."""
    async with unit.pool.acquire() as conn:
        payment = await store.by_gateway_order(conn, command.gateway_order_id)
        if payment is None:
            return None
        saved = await apply_signal(conn, payment, command.signal, delivery=delivery)
    if saved is Saved.APPLIED:
        unit.wake()
    return saved
