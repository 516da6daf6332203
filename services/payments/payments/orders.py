"""Orders: whose they are, what the commerce side fixed, and why a create stored nothing.

An order's terms come from `order.placed` (the `payments.orders` consumer) or from a create
carrying the `service` scope; a user's create names the order only.
"""

from __future__ import annotations

from payments import order_store, store
from payments.order_store import Order, OrderState
from payments.schemas import ORDER_TERMS, CreatePayment
from payments.store import PaymentRow
from rtmn_shared.db import Connection
from rtmn_shared.events.catalogue import OrderPlaced
from rtmn_shared.events.outcomes import GiveUp
from rtmn_shared.web.auth import SERVICE, Caller
from rtmn_shared.web.problems import Problem


async def placed(conn: Connection, event_id: str, event: OrderPlaced) -> None:
    """Records an order the commerce side placed; a redelivery is the inbox's to absorb, and
    another account of a known order is given up for a person, never applied."""
    order = Order(
        event.order_id,
        event.order_number,
        event.user_id,
        event.merchant_id,
        event.amount,
        event.currency,
    )
    if await order_store.place(conn, order, event_id):
        return
    known = await order_store.known(conn, order.order_id)
    if known != order:
        raise GiveUp(f"order.placed for {order.order_id} disagrees with the order already known")


def order_terms(caller: Caller, request: CreatePayment) -> tuple[str, Order | None]:
    """Whose payment it is, and the order's terms when a `service` caller sets them. A user's
    create names its order only: the amount is the order's, never the client's."""
    if not caller.has(SERVICE):
        if request.terms():
            raise Problem(
                403,
                f"only a caller with the 'service' scope sets an order's terms "
                f"({', '.join(request.terms())}); a user's create names the order only",
            )
        return caller.user_id, None
    number, merchant, amount, user = (
        request.order_number,
        request.merchant_id,
        request.amount,
        request.user_id,
    )
    if number is None or merchant is None or amount is None or user is None:
        missing = sorted(t for t in ORDER_TERMS - {"currency"} if getattr(request, t) is None)
        raise Problem(422, f"a service's create sets the order's terms: {', '.join(missing)}")
    terms = Order(request.order_id, number, user, merchant, amount, request.currency or "INR")
    return terms.user_id, terms


async def open_payment(
    conn: Connection, state: OrderState | None, user_id: str, terms: Order | None
) -> PaymentRow | None:
    if state is None or state.open_payment_id is None or state.order.user_id != user_id:
        return None
    if terms is not None and state.order != terms:
        return None
    return await store.get_payment(conn, state.open_payment_id)


def refuse(state: OrderState | None, user_id: str, terms: Order | None) -> None:
    """Why no payment was stored, as the caller's problem: none of this changes on a retry
    except an order still on its way (its `order.placed` not consumed yet)."""
    if terms is not None and state is not None and state.order != terms:
        raise Problem(409, f"order {terms.order_id} is known with other terms")
    if state is None or state.order.user_id != user_id:
        # The same answer for someone else's order as for an unknown one: nothing leaks.
        raise Problem(
            404,
            "no such order: if it was placed just now, its order.placed may not have arrived; "
            "retry shortly",
            headers={"Retry-After": "1"},
            retryable=True,
        )
    if state.settled:
        raise Problem(409, "this order is paid already (or its payment awaits review)")
