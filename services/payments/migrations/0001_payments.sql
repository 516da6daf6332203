-- Payments, their refunds, the webhook deliveries seen, and Idempotency-Key records.

CREATE TABLE payments (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    order_id            TEXT NOT NULL,
    order_number        TEXT NOT NULL,
    merchant_id         TEXT NOT NULL,
    amount              BIGINT NOT NULL CHECK (amount > 0),
    currency            TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    gateway             TEXT NOT NULL CHECK (gateway IN ('razorpay', 'stripe', 'upi')),
    status              TEXT NOT NULL DEFAULT 'created' CHECK (status IN
        ('created', 'authorized', 'failed', 'captured', 'partially_refunded', 'refunded',
         'conflicted')),
    -- The Razorpay order or Stripe PaymentIntent; NULL while the gateway's answer is unknown.
    gateway_order_id    TEXT UNIQUE,
    gateway_payment_id  TEXT,
    captured_amount     BIGINT NOT NULL DEFAULT 0 CHECK (captured_amount >= 0),
    refunded_total      BIGINT NOT NULL DEFAULT 0
        CHECK (refunded_total >= 0 AND refunded_total <= captured_amount),
    error_code          TEXT,
    error_description   TEXT,
    conflict_reason     TEXT,
    paid_at             TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Reconciliation scans only the payments still waiting for the gateway.
CREATE INDEX payments_open ON payments (updated_at) WHERE status IN ('created', 'authorized');

CREATE TABLE refunds (
    id                  TEXT PRIMARY KEY,
    payment_id          TEXT NOT NULL REFERENCES payments (id),
    amount              BIGINT NOT NULL CHECK (amount > 0),
    status              TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processed', 'failed')),
    gateway_refund_id   TEXT UNIQUE,
    reason              TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX refunds_of_payment ON refunds (payment_id);
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE status = 'pending';

-- One row per provider event: a redelivered webhook finds its row and changes nothing.
CREATE TABLE webhook_deliveries (
    provider        TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    -- The payment or refund the first request made, so a retry resumes it.
    resource_id     TEXT,
    status_code     INTEGER,
    response        JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
