"""Applying payments, refunds and users to the ledger, each inside the caller's transaction.

Idempotent on its own, beyond the consumer's inbox: a payment is credited once (earnings row),
a refund is reversed once (refunds row), and the entries' effect key backs both up.

A refund that arrives before its payment's credit (they travel on different queues) is
recorded as pending and settled by the credit when it comes, in the credit's transaction. That
needs no timer and no dead-letter queue, and the outcome does not depend on arrival order.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from rtmn_shared.db import Connection
from rtmn_shared.events.catalogue import (
    OrderPlaced,
    PaymentRefunded,
    PaymentSuccess,
    UserRegistered,
    WalletCashbackQuoted,
    WalletCredited,
    WalletDebited,
)
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.events.outcomes import GiveUp
from wallet import store
from wallet.domain import CASHBACK, CASHBACK_REVERSAL, EarningRule, reversal_coins
from wallet.store import Earning, Entry, NewEntry, Refund

log = logging.getLogger(__name__)


class Ledger:
    def __init__(self, rule: EarningRule, outbox: Outbox) -> None:
        self.rule = rule
        self.outbox = outbox

    async def register_user(self, conn: Connection, user: UserRegistered, at: datetime) -> None:
        await store.upsert_user(conn, user.user_id, user.tier, at)

    def earns(self, amount: int, currency: str, known_tier: str | None) -> tuple[str, int]:
        """The tier applied and the coins earned: the one computation of both quote and credit."""
        return self.rule.tier_of(known_tier), self.rule.coins_for(amount, currency, known_tier)

    async def quote(self, conn: Connection, order: OrderPlaced) -> WalletCashbackQuoted:
        """What the order will earn when paid, as the credit would compute it now; emitted even
        when 0, so a consumer knows the order earns nothing. No row of its own: the consumer's
        inbox makes it once per order.placed."""
        tier, coins = self.earns(
            order.amount, order.currency, await store.known_tier(conn, order.user_id)
        )
        quoted = WalletCashbackQuoted(
            order_id=order.order_id,
            user_id=order.user_id,
            amount=order.amount,
            currency=order.currency,
            tier=tier,
            coins=coins,
        )
        await self.outbox.add(conn, quoted)
        return quoted

    async def credit(self, conn: Connection, payment: PaymentSuccess) -> list[Entry]:
        """Credits the payment's cashback, then settles refunds that were waiting for it."""
        known_tier = await store.lock_payment_and_read_tier(
            conn, payment.payment_id, payment.user_id
        )
        tier, coins = self.earns(payment.amount, payment.currency, known_tier)
        earning = Earning(
            payment_id=payment.payment_id,
            user_id=payment.user_id,
            amount=payment.amount,
            currency=payment.currency,
            tier=tier,
            coins=coins,
        )
        pending = await store.insert_earning(conn, earning)
        if pending is None:
            log.info("payment %s was already credited", payment.payment_id)
            return []
        posted = []
        if earning.coins > 0:
            entry = await store.post_entry(
                conn,
                NewEntry(
                    uuid.uuid4(), earning.user_id, CASHBACK, earning.coins, earning.payment_id, None
                ),
            )
            await self.outbox.add(
                conn,
                WalletCredited(
                    entry_id=str(entry.entry_id),
                    user_id=entry.user_id,
                    coins=entry.coins,
                    reason=CASHBACK,
                    reference=entry.payment_id,
                    balance_after=entry.balance_after,
                ),
            )
            posted.append(entry)
        waiting = await store.pending_refunds(conn, payment.payment_id) if pending else []
        for refund in waiting:
            if refund.currency != earning.currency:
                log.error(
                    "refund %s is in %s but payment %s was in %s; left pending",
                    refund.refund_id,
                    refund.currency,
                    earning.payment_id,
                    earning.currency,
                )
                continue
            posted += await self._settle(conn, earning, refund)
        return posted

    async def reverse(self, conn: Connection, refunded: PaymentRefunded) -> list[Entry]:
        """Reverses the refund's share of the payment's cashback, or parks it until the credit."""
        if refunded.refunded_total < refunded.amount:
            raise GiveUp(f"refund {refunded.refund_id}: refunded_total is below its own amount")
        await store.lock_payment(conn, refunded.payment_id)
        earning = await store.get_earning(conn, refunded.payment_id)
        if earning is not None and earning.currency != refunded.currency:
            raise GiveUp(
                f"refund {refunded.refund_id} is in {refunded.currency}, "
                f"its payment in {earning.currency}"
            )
        refund = Refund(
            refund_id=refunded.refund_id,
            payment_id=refunded.payment_id,
            user_id=refunded.user_id,
            amount=refunded.amount,
            refunded_total=refunded.refunded_total,
            currency=refunded.currency,
            full=refunded.full,
        )
        if not await store.insert_refund(conn, refund):
            log.info("refund %s was already applied", refund.refund_id)
            return []
        if earning is None:
            log.info(
                "refund %s arrived before the credit of payment %s; pending",
                refund.refund_id,
                refund.payment_id,
            )
            return []
        return await self._settle(conn, earning, refund)

    async def _settle(self, conn: Connection, earning: Earning, refund: Refund) -> list[Entry]:
        if refund.user_id != earning.user_id:
            # The coins went to the payer; they come back from the payer.
            log.warning("refund %s names another user than its payment", refund.refund_id)
        coins = reversal_coins(
            credited=earning.coins,
            reversed_so_far=await store.reversed_coins(conn, earning.payment_id),
            payment_amount=earning.amount,
            refunded_total=refund.refunded_total,
            full=refund.full,
        )
        await store.mark_settled(conn, refund.refund_id, coins)
        if coins == 0:
            return []
        entry = await store.post_entry(
            conn,
            NewEntry(
                uuid.uuid4(),
                earning.user_id,
                CASHBACK_REVERSAL,
                -coins,
                earning.payment_id,
                refund.refund_id,
            ),
        )
        if entry.shortfall:
            log.warning(
                "reversal of refund %s took %s below zero by %d coins",
                refund.refund_id,
                entry.user_id,
                entry.shortfall,
            )
        await self.outbox.add(
            conn,
            WalletDebited(
                entry_id=str(entry.entry_id),
                user_id=entry.user_id,
                coins=coins,
                reason=CASHBACK_REVERSAL,
                reference=refund.refund_id,
                balance_after=entry.balance_after,
            ),
        )
        return [entry]
