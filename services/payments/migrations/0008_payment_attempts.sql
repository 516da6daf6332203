-- Each time a create (or reconciliation) asked a gateway for a payment's order: which gateway,
-- how it ended, how long it took. A routed create that fails over has one row per gateway tried.
-- `unknown` (a timeout, 5xx, dropped connection) may have left an order at that gateway; when
-- the payment then holds another gateway's order, that possible order is a *stray*, watched by
-- reconciliation until it is shown harmless (`settled`); so is an order made but not kept
-- (`stray`: a racing request's order was recorded first).
-- No foreign key: its check would lock the payment's row a second way in the create's statement
-- (a multixact per create); rows are only written beside an update of that payment.
CREATE TABLE payment_attempts (
    payment_id          TEXT NOT NULL,
    -- Numbered from the payment's `attempts`, counted up in the statement that writes the row
    -- (under the payment's row lock, so racing requests never take the same number).
    attempt             INTEGER NOT NULL CHECK (attempt > 0),
    gateway             TEXT NOT NULL CHECK (gateway IN ('razorpay', 'stripe', 'upi')),
    outcome             TEXT NOT NULL
        CHECK (outcome IN ('opened', 'stray', 'unknown', 'refused', 'skipped')),
    error               TEXT,
    latency_ms          INTEGER NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    -- The gateway's order, when known: the one opened, or a stray found by reconciliation.
    gateway_order_id    TEXT,
    -- A possible stray: an `unknown` attempt at a gateway the payment then left, or a `stray`.
    watched             BOOLEAN NOT NULL DEFAULT false,
    -- How a stray ended: no order was made, it lapsed unpaid, or its capture was refunded.
    settled             TEXT CHECK (settled IN ('none', 'closed', 'lapsed', 'refunded')),
    gateway_refund_id   TEXT,
    checked_at          TIMESTAMPTZ,
    at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, attempt)
);

ALTER TABLE payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- Reconciliation's scan: possible strays not yet shown harmless, least recently checked first.
CREATE INDEX payment_attempts_watched ON payment_attempts ((coalesce(checked_at, at)))
    WHERE watched AND settled IS NULL;
