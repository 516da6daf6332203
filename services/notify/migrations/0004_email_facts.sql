-- What the order and welcome emails tell beyond the payment and the user: the order's delivery
-- estimate and tracking link (order.placed), the coins a payment earned (wallet.credited with
-- reason cashback) and the user's coin balance (the latest wallet.credited / wallet.debited).
-- Read models, one row per order, payment and user.

CREATE TABLE orders (
    order_id            TEXT PRIMARY KEY,
    estimated_delivery  DATE,
    tracking_url        TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE cashback (
    payment_id  TEXT PRIMARY KEY,
    coins       BIGINT NOT NULL CHECK (coins > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE coin_balances (
    user_id     TEXT PRIMARY KEY,
    coins       BIGINT NOT NULL,
    -- The time of the ledger event this row reflects: an older event replayed later never wins.
    as_of       TIMESTAMPTZ NOT NULL
);
