"""The payments service's one consumer: orders as the commerce side placed them."""

from __future__ import annotations

from payments import orders
from rtmn_shared.events.catalogue import OrderPlaced
from rtmn_shared.events.consumer import Delivery, Handler


async def _order_placed(delivery: Delivery) -> None:
    assert isinstance(delivery.data, OrderPlaced)
    assert delivery.conn is not None
    await orders.placed(delivery.conn, str(delivery.event.id), delivery.data)


def build_handlers() -> list[Handler]:
    return [Handler("orders", (OrderPlaced,), _order_placed)]
