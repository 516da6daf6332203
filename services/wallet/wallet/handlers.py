"""The wallet's consumers: thin adapters from deliveries to the ledger, one queue each."""

from __future__ import annotations

from rtmn_shared.events.catalogue import (
    OrderPlaced,
    PaymentRefunded,
    PaymentSuccess,
    UserRegistered,
)
from rtmn_shared.events.consumer import Delivery, Handler
from wallet.ledger import Ledger


def build_handlers(ledger: Ledger) -> list[Handler]:
    async def credit_cashback(delivery: Delivery[PaymentSuccess]) -> None:
        assert delivery.conn is not None
        await ledger.credit(delivery.conn, delivery.data)

    async def reverse_cashback(delivery: Delivery[PaymentRefunded]) -> None:
        assert delivery.conn is not None
        await ledger.reverse(delivery.conn, delivery.data)

    async def quote_cashback(delivery: Delivery[OrderPlaced]) -> None:
        assert delivery.conn is not None
        await ledger.quote(delivery.conn, delivery.data)

    async def track_users(delivery: Delivery[UserRegistered]) -> None:
        assert delivery.conn is not None
        await ledger.register_user(delivery.conn, delivery.data, delivery.event.time)

    return [
        Handler("credit-cashback", (PaymentSuccess,), credit_cashback),
        Handler("reverse-cashback", (PaymentRefunded,), reverse_cashback),
        Handler("quote-cashback", (OrderPlaced,), quote_cashback),
        Handler("users", (UserRegistered,), track_users),
    ]
