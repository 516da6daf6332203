-- Orders as the commerce side placed them: a user's create names an order and its payment takes
-- the amount, currency and merchant from here, never from the client. Filled by `order.placed`
-- (the `payments.orders` consumer) or by a create carrying the `service` scope. Payments made
-- before this migration keep their amounts; their orders are not backfilled from them, as those
-- amounts came from the client.
CREATE TABLE orders (
    order_id        TEXT PRIMARY KEY,
    order_number    TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    merchant_id     TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Who told us: 'order.placed' (the event's id in `event_id`) or 'service' (a create).
    source          TEXT NOT NULL CHECK (source IN ('order.placed', 'service')),
    event_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An order's payments: a create checks that none of them is paid in the statement storing its own.
CREATE INDEX payments_of_order ON payments (order_id);

-- At most one open payment per order: of two racing creates one stores its payment, the other
-- finds it and answers with it. A failed payment leaves room for a new one.
DO $$
BEGIN
    IF EXISTS (SELECT order_id FROM payments WHERE status IN ('created', 'authorized')
               GROUP BY order_id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'payments: some orders have more than one open payment; settle them '
            '(reconciliation, or mark the extra ones failed) before this migration';
    END IF;
END
$$;
CREATE UNIQUE INDEX payments_one_open_per_order ON payments (order_id)
    WHERE status IN ('created', 'authorized');
