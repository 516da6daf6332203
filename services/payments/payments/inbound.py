"""A verified webhook applied atomically: delivery recorded, payment moved, event out."""

from __future__ import annotations

import logging

from payments import dispute_store, refund_store, store
from payments.batching import Batcher
from payments.disputes import DisputeCommand
from payments.outcome_store import Saved
from payments.store import Delivery
from payments.transitions import apply_signal, settle_refund
from payments.webhooks import Command, PaymentCommand, RefundCommand
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)


class Inbound:
    def __init__(self, unit: UnitOfWork, batcher: Batcher) -> None:
        self.unit = unit
        self.batcher = batcher

    async def handle(self, delivery: Delivery, command: Command) -> bool:
        """False when the provider had sent this event before: nothing changes then."""
        if isinstance(command, PaymentCommand):
            # Read without a lock and written, with others arriving meanwhile, by one statement
            # that locks the row and checks it is still as read; if not, decided again below.
            saved = await self.batcher.apply(delivery, command)
            if saved is not None and saved is not Saved.STALE:
                return saved is Saved.APPLIED
        return await handle_locked(self.unit, delivery, command)


async def handle_locked(unit: UnitOfWork, delivery: Delivery, command: Command) -> bool:
    """The webhook applied in a transaction that reads what it changes FOR UPDATE."""
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
        elif isinstance(command, DisputeCommand):
            return await dispute_store.apply_dispute(conn, delivery, command)
        fresh = await store.record_delivery(conn, delivery)
        if fresh:
            log.info(
                "webhook %s %s concerns nothing of ours", delivery.provider, delivery.event_type
            )
        return fresh
