"""Reconciliation: asks the gateway about payments and refunds nobody confirmed in time.

Runs in the `consumers` process (`python -m payments consumers` or `all`), every
RECONCILE_INTERVAL_SECONDS; an advisory lock keeps replicas from running passes at once.
A gateway that does not answer is "unknown": the item is left as it is for the next pass.
A created payment older than PAYMENT_EXPIRY_SECONDS is asked about one last time and, still
unpaid, expired under its row lock, then its order closed where the gateway can (a payment that
arrives after that is captured all the same: `captured` outranks `expired`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from payments import attempt_store, metrics, refund_store, refunds, store
from payments.attempt_store import Watched
from payments.checkout import gateway_order
from payments.domain import Authorized, Captured, Expired, Status
from payments.providers.gateway import (
    GatewayRejected,
    Gateways,
    GatewayUnavailable,
    PaymentGateway,
    RefundRequest,
)
from payments.refund_store import RefundRow
from payments.store import PaymentRow
from payments.transitions import apply_signal
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)

LOCK = "rtmn.payments.reconcile"
# How long a stray order found unpaid is still watched: past Stripe's 7 days of an authorisation
# and Razorpay's 5 days before it refunds one never captured.
STRAY_WATCH = timedelta(days=8)


@dataclass
class Report:
    settled: int = 0
    unknown: int = 0
    unchanged: int = 0
    expired: int = 0


class Reconciler:
    def __init__(
        self,
        unit: UnitOfWork,
        gateways: Gateways,
        *,
        after_seconds: int,
        batch: int,
        expire_after_seconds: int | None = None,
    ) -> None:
        self.unit = unit
        self.pool = unit.pool
        self.gateways = gateways
        self.after = timedelta(seconds=after_seconds)
        self.batch = batch
        # None: created payments are never expired (asked about on every pass instead).
        self.expire_after = (
            None if expire_after_seconds is None else timedelta(seconds=expire_after_seconds)
        )

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, TimeoutError) as error:
                log.warning("reconciliation pass failed: %s", type(error).__name__)
            await asyncio.sleep(interval)

    async def run_once(self, now: datetime | None = None) -> Report:
        report = Report()
        now = now or datetime.now(UTC)
        cutoff = now - self.after
        async with self.pool.acquire() as lock_conn:
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", LOCK):
                return report
            try:
                if self.expire_after is not None:
                    old = await store.expiring_payments(
                        lock_conn, now - self.expire_after, self.batch
                    )
                    for payment in old:
                        await self._payment(payment, report, expire=True)
                stuck = await store.open_payments(lock_conn, cutoff, self.batch)
                for payment in stuck:
                    await self._payment(payment, report)
                pending = await refund_store.pending_refunds(lock_conn, cutoff, self.batch)
                for refund in pending:
                    await self._refund(refund, report)
                strays = await attempt_store.watched(lock_conn, cutoff, self.batch)
                for stray in strays:
                    await self._stray(stray, report, cutoff + self.after)
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", LOCK)
        if stuck or pending or strays:
            log.info("reconciliation: %s", report)
        return report

    async def _payment(self, payment: PaymentRow, report: Report, *, expire: bool = False) -> None:
        gateway = self.gateways.of(payment.gateway)
        try:
            order_id = payment.gateway_order_id
            if order_id is None:
                # Create timed out: the order it may have made is found, never made twice.
                started = time.monotonic()
                checkout = await gateway_order(gateway, payment, earlier_try=True)
                async with self.pool.acquire() as conn:
                    order_id = await store.set_gateway_order(
                        conn,
                        payment.id,
                        checkout.gateway_order_id,
                        gateway=payment.gateway,
                        latency_ms=round((time.monotonic() - started) * 1000),
                    )
                if order_id is None:  # withdrawn by its create meanwhile: nothing to settle
                    return
            signal = await gateway.status(order_id)
        except (GatewayUnavailable, GatewayRejected) as error:
            log.warning("reconciling %s: no answer (%s); asking again later", payment.id, error)
            report.unknown += 1
            # To the back of the queue, so that one unanswered item never starves the rest.
            async with self.pool.acquire() as conn:
                await store.touch_payment(conn, payment.id)
            return
        async with self.unit.transaction() as conn:
            if signal is None and not expire:
                await store.touch_payment(conn, payment.id)
                report.unchanged += 1
                return
            locked = await store.get_payment(conn, payment.id, lock=True)
            assert locked is not None
            # Paid meanwhile (the last answer, or a webhook since): settled, never expired.
            expiring = signal is None and locked.status is Status.CREATED
            await apply_signal(conn, locked, signal or Expired())
        if not expiring:
            report.settled += 1
            return
        report.expired += 1
        await self._closed(gateway, payment.id, order_id)

    async def _refund(self, refund: RefundRow, report: Report) -> None:
        async with self.pool.acquire() as conn:
            payment = await store.get_payment(conn, refund.payment_id)
        assert payment is not None
        if refund.gateway_refund_id is None:
            # The first request's answer was lost: resend it under the same idempotency key.
            after = await refunds.submit(self.unit, self.gateways, payment, refund)
        else:
            try:
                state = await self.gateways.of(payment.gateway).refund_status(
                    refund.gateway_refund_id
                )
            except (GatewayUnavailable, GatewayRejected):
                report.unknown += 1
                async with self.pool.acquire() as conn:
                    await refund_store.touch_refund(conn, refund.id)
                return
            after = await refunds.record(self.unit, refund, state)
        if after.status is refund.status:
            report.unchanged += 1
        else:
            report.settled += 1

    async def _stray(self, stray: Watched, report: Report, now: datetime) -> None:
        """A gateway the payment left may hold an order for it that nobody was given. Looked
        for, and if money was captured on it, that capture is refunded: the payment's capture is
        only ever the one on the order it holds."""
        gateway = self.gateways.of(stray.gateway)
        payment = stray.payment
        try:
            order_id = stray.gateway_order_id or await _look_for(gateway, payment)
            if order_id is None or order_id == payment.gateway_order_id:
                await self._settle(stray, order_id, "none")
                report.settled += 1
                return
            signal = await gateway.status(order_id)
            if isinstance(signal, Captured):
                refund = await gateway.refund(
                    RefundRequest(
                        f"stray_{stray.attempt}_{payment.id}",
                        payment.id,
                        order_id,
                        signal.gateway_payment_id,
                        signal.amount,
                        signal.currency,
                    )
                )
                log.error(
                    "payment %s: %s captured %d on stray order %s; refunded (%s)",
                    payment.id,
                    stray.gateway,
                    signal.amount,
                    order_id,
                    refund.gateway_refund_id,
                )
                await self._settle(stray, order_id, "refunded", refund.gateway_refund_id)
                report.settled += 1
                return
        except (GatewayUnavailable, GatewayRejected) as error:
            log.warning("stray check of %s at %s: %s", payment.id, stray.gateway, error)
            report.unknown += 1
            order_id = stray.gateway_order_id
        else:
            # Nothing captured at it: closed (an authorisation on it released), it never can be,
            # and needs no more watching.
            uncaptured = signal is None or isinstance(signal, Authorized)
            if (
                uncaptured
                and gateway.closes_orders
                and await self._closed(gateway, payment.id, order_id)
            ):
                await self._settle(stray, order_id, "closed")
                report.settled += 1
                return
            if not isinstance(signal, Authorized) and now - stray.at > STRAY_WATCH:
                await self._settle(stray, order_id, "lapsed")
                report.settled += 1
                return
            report.unchanged += 1
        async with self.pool.acquire() as conn:
            await attempt_store.checked(conn, payment.id, stray.attempt, order_id)

    @staticmethod
    async def _closed(gateway: PaymentGateway, payment_id: str, order_id: str) -> bool:
        """Whether the gateway closed the order. One left open still has its payment captured
        (or, a stray, refunded): never dropped."""
        try:
            await gateway.close(order_id)
        except (GatewayUnavailable, GatewayRejected) as error:
            log.warning("order %s of payment %s not closed: %s", order_id, payment_id, error)
            return False
        return True

    async def _settle(
        self, stray: Watched, order_id: str | None, settled: str, refund_id: str | None = None
    ) -> None:
        async with self.pool.acquire() as conn:
            await attempt_store.checked(
                conn, stray.payment.id, stray.attempt, order_id, settled, refund_id
            )
        metrics.STRAY_ORDERS.labels(stray.gateway, settled).inc()


async def _look_for(gateway: PaymentGateway, payment: PaymentRow) -> str | None:
    """The order a lost try may have made: found, or (where `open` is idempotent) opened again."""
    new = payment.new_payment()
    found = await (gateway.open(new) if gateway.idempotent_open else gateway.find(new))
    return found.gateway_order_id if found else None
