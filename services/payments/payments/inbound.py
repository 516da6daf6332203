"""A verified webhook applied in one transaction: delivery recorded, payment moved, event out."""

from __future__ import annotations

import logging

from payments import refund_store, store
from payments.store import Delivery
from payments.transitions import apply_signal, settle_refund
from payments.webhooks import Command, PaymentCommand, RefundCommand
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)


async def handle(unit: UnitOfWork, delivery: Delivery, command: Command) -> bool:
    """False when the provider had sent this event before: nothing changes then."""
    async with unit.transaction() as conn:
        if isinstance(command, PaymentCommand):
            payment = await store.by_gateway_order(conn, command.gateway_order_id, lock=True)
            if payment is not None:
                return await apply_signal(conn, payment, command.signal, delivery=delivery)
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
