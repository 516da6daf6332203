"""What the order and welcome emails tell besides the payment and the user, kept as read models
of other services' events: the order's delivery estimate and tracking link (order.placed), the
coins a payment earned and the user's balance (wallet.credited, wallet.debited)."""

from __future__ import annotations

from typing import cast

from notify import store
from notify.domain import OrderFacts
from rtmn_shared.events.catalogue import OrderPlaced, WalletCredited, WalletDebited
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.outcomes import Retry

CASHBACK = "cashback"  # wallet's reason for a payment's coins (its reference: the payment id)
WAITED = "x-rtmn-waited-for-facts"
# The order email waits at most once, this long, for order.placed and the wallet's credit to
# arrive on their own queues; then it goes without what is still missing. The usual retries
# for a provider outage follow after it.
WAIT_MS = 1_000


def wait_once(delivery: Delivery, facts: OrderFacts) -> None:
    """Has the delivery come back once, if the order or its cashback is not known yet: both
    travel on other queues, and a payment's email would otherwise nearly always beat its coins.
    A payment that earns nothing, or an order no order.placed announced, waits that once only."""
    if not facts.complete and WAITED not in delivery.headers:
        raise Retry("waiting once for the order and its cashback", headers={WAITED: "1"})


def build_fact_handlers() -> list[Handler]:
    async def orders(delivery: Delivery) -> None:
        assert delivery.conn is not None
        await store.record_order(delivery.conn, cast(OrderPlaced, delivery.data))

    async def coins(delivery: Delivery) -> None:
        assert delivery.conn is not None
        entry = cast(WalletCredited | WalletDebited, delivery.data)
        cashback = isinstance(entry, WalletCredited) and entry.reason == CASHBACK
        await store.record_coins(delivery.conn, entry, delivery.event.time, cashback)

    return [
        Handler("orders", (OrderPlaced,), orders),
        Handler("coins", (WalletCredited, WalletDebited), coins),
    ]
