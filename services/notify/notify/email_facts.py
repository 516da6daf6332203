"""What the order and welcome emails tell besides the payment and the user, kept as read models
of other services' events: the order's delivery estimate and tracking link (order.placed), the
coins the wallet quoted for the order when it was placed (wallet.cashback_quoted: the payment's
own credit is emitted as the email goes, so it is seldom known by then), the coins a payment
earned and the user's balance (wallet.credited, wallet.debited)."""

from __future__ import annotations

from datetime import datetime

from notify import store
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import (
    OrderPlaced,
    WalletCashbackQuoted,
    WalletCredited,
    WalletDebited,
)
from rtmn_shared.events.consumer import Delivery, Handler

CASHBACK = "cashback"  # wallet's reason for a payment's coins (its reference: the payment id)


def build_fact_handlers() -> list[Handler]:
    async def orders(delivery: Delivery[OrderPlaced]) -> None:
        assert delivery.conn is not None
        await store.record_order(delivery.conn, delivery.data)

    async def quotes(delivery: Delivery[WalletCashbackQuoted]) -> None:
        assert delivery.conn is not None
        await store.record_quote(delivery.conn, delivery.data)

    async def debits(delivery: Delivery[WalletDebited]) -> None:
        assert delivery.conn is not None
        await store.record_coins(delivery.conn, delivery.data, delivery.event.time, cashback=False)

    return [
        Handler("orders", (OrderPlaced,), orders),
        Handler("quotes", (WalletCashbackQuoted,), quotes),
        Handler("coins", (WalletDebited,), debits),
    ]


async def record_credit(pool: Pool, credit: WalletCredited, as_of: datetime) -> None:
    """A credit's coins and balance, recorded by the credited push's handler on its delivery:
    every payment credits coins, and a queue of its own would cost each payment a delivery more.
    Idempotent (a payment's coins once, a balance never older than the one known)."""
    await store.record_coins(pool, credit, as_of, cashback=credit.reason == CASHBACK)
