"""Orders in SQL, and the one statement that stores a payment for an order.

The statement reads the order (a user's create) or registers it (a service's), locks its
payments and checks that none is paid (a capture in flight is waited for), and inserts the
payment unless another open one holds the order's place in the unique index
`payments_one_open_per_order`: one round trip, one commit, as before orders.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments import key_store
from payments.key_store import Key
from payments.store import PAYMENT_COLUMNS, PaymentRow
from rtmn_shared.db import Connection
from rtmn_shared.tracing import current_traceparent

OPEN = "('created', 'authorized')"
# Expired and voided payments took no money: the order may be paid anew.
NOT_PAID = "('created', 'authorized', 'failed', 'expired', 'voided')"
_TERMS = "order_id, order_number, user_id, merchant_id, amount, currency"


@dataclass(frozen=True)
class Order:
    """What the commerce side fixed: a payment for this order is for this user and amount."""

    order_id: str
    order_number: str
    user_id: str
    merchant_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class OrderState:
    """Why a create stored nothing: the order as known, its open payment, whether it is paid."""

    order: Order
    open_payment_id: str | None
    settled: bool


async def place(conn: Connection, order: Order, event_id: str) -> bool:
    """Records an `order.placed`; False if the order is known already (then `known` says how)."""
    inserted = await conn.fetchval(
        f"""INSERT INTO orders ({_TERMS}, source, event_id)
            VALUES ($1, $2, $3, $4, $5, $6, 'order.placed', $7)
            ON CONFLICT (order_id) DO NOTHING RETURNING true""",  # noqa: S608 - fixed text
        order.order_id,
        order.order_number,
        order.user_id,
        order.merchant_id,
        order.amount,
        order.currency,
        event_id,
    )
    return bool(inserted)


async def known(conn: Connection, order_id: str) -> Order | None:
    record = await conn.fetchrow(
        f"SELECT {_TERMS} FROM orders WHERE order_id = $1",  # noqa: S608 - fixed text
        order_id,
    )
    return Order(**dict(record)) if record else None


def _statement(*, keyed: bool, terms: bool) -> str:
    """The create's statement. Keyed, $1-$5 are key_store.CLAIM's (its $4 the payment id) and
    ours follow; with `terms` (a service's create) the order is registered, or matched if
    known, instead of read: only if the key is claimed, so a replay or a refusal changes
    nothing."""
    first = 6 if keyed else 2
    payment_id = "$4" if keyed else "$1"
    user, order_id, gateway, traceparent = (f"${first + n}" for n in range(4))
    claimed = f"claimed AS ({key_store.CLAIM} RETURNING resource_id), " if keyed else ""
    if terms:
        number, merchant, amount, currency = (f"${first + 4 + n}" for n in range(4))
        if_claimed = "WHERE EXISTS (SELECT 1 FROM claimed)" if keyed else ""
        # DO UPDATE (to itself) returns a known order's row when its terms are the same.
        order = f"""INSERT INTO orders ({_TERMS}, source)
            SELECT {order_id}, {number}, {user}, {merchant}, {amount}, {currency}, 'service'
            {if_claimed}
            ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
            WHERE (orders.order_number, orders.user_id, orders.merchant_id, orders.amount,
                   orders.currency) = (EXCLUDED.order_number, EXCLUDED.user_id,
                   EXCLUDED.merchant_id, EXCLUDED.amount, EXCLUDED.currency)
            RETURNING {_TERMS}"""
    else:
        order = f"SELECT {_TERMS} FROM orders WHERE order_id = {order_id} AND user_id = {user}"  # noqa: S608
    source = "o, claimed" if keyed else "o"
    new_id = "claimed.resource_id" if keyed else payment_id
    # The order's payments locked (in id order, as webhook batches lock): one being captured
    # right now is waited for and seen as it ends (its newest version), so a paid order is
    # never given a second payment.
    return f"""WITH {claimed}o AS ({order}),
        locked AS (SELECT p.status FROM payments p, o WHERE p.order_id = o.order_id
                   ORDER BY p.id FOR UPDATE OF p)
        INSERT INTO payments (id, user_id, order_id, order_number, merchant_id, amount,
            currency, gateway, traceparent)
        SELECT {new_id}, o.user_id, o.order_id, o.order_number, o.merchant_id, o.amount,
            o.currency, {gateway}, {traceparent}
        FROM {source}
        WHERE NOT EXISTS (SELECT 1 FROM locked WHERE status NOT IN {NOT_PAID})
        ON CONFLICT (order_id) WHERE status IN {OPEN} DO NOTHING
        RETURNING {PAYMENT_COLUMNS}"""  # noqa: S608 - fixed text, parameters numbered


_STATEMENTS = {
    (keyed, terms): _statement(keyed=keyed, terms=terms)
    for keyed in (False, True)
    for terms in (False, True)
}


async def insert_payment(
    conn: Connection,
    payment_id: str,
    user_id: str,
    order_id: str,
    gateway: str,
    *,
    terms: Order | None = None,
    key: Key | None = None,
) -> PaymentRow | None:
    """Stores a new payment for the user's order (registering `terms` first, for a service),
    claiming the key in the same statement. None: nothing stored, because the key was claimed
    before, or the order is unknown, someone else's, paid, or has an open payment already."""
    # The creating request's trace, which the payment's outcome event continues.
    values: list[object] = [payment_id, user_id, order_id, gateway, current_traceparent.get()]
    if key is not None:
        claim = [key.user_id, key.value, key.request_hash, payment_id]
        values = [*claim, key_store.ABANDONED_AFTER_SECONDS, *values[1:]]
    if terms is not None:
        assert (terms.order_id, terms.user_id) == (order_id, user_id)
        values += [terms.order_number, terms.merchant_id, terms.amount, terms.currency]
    record = await conn.fetchrow(_STATEMENTS[key is not None, terms is not None], *values)
    return PaymentRow.of(record) if record else None


async def state_of(conn: Connection, order_id: str) -> OrderState | None:
    """The order and its payments, read after a create stored nothing (a statement of its own,
    so it sees what a racing create committed)."""
    record = await conn.fetchrow(
        f"""SELECT {_TERMS},
                (SELECT id FROM payments p WHERE p.order_id = o.order_id
                   AND p.status IN {OPEN}) AS open_payment_id,
                EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id
                   AND p.status NOT IN {NOT_PAID}) AS settled
            FROM orders o WHERE order_id = $1""",  # noqa: S608 - fixed text
        order_id,
    )
    if record is None:
        return None
    values = dict(record)
    open_payment_id, settled = values.pop("open_payment_id"), values.pop("settled")
    return OrderState(Order(**values), open_payment_id, settled)


async def settle_claim(conn: Connection, key: Key, claimed_id: str, open_id: str | None) -> None:
    """A key claimed for a payment the statement did not store: pointed at the order's open
    payment (a retry with it resumes that one), or released (no open payment)."""
    if open_id is None:
        await conn.execute(
            """DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2
               AND resource_id = $3 AND status_code IS NULL""",
            key.user_id,
            key.value,
            claimed_id,
        )
    else:
        await conn.execute(
            """UPDATE idempotency_keys SET resource_id = $4
               WHERE user_id = $1 AND key = $2 AND resource_id = $3""",
            key.user_id,
            key.value,
            claimed_id,
            open_id,
        )
