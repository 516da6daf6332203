-- Disputes (chargebacks, and the inquiries before them) that Razorpay and Stripe tell us of by
-- webhook, one row per gateway dispute, written in the transaction recording the delivery that
-- brought it. `status` is ours (open, under_review, won, lost, closed); `gateway_status` is the
-- provider's own word. A row moves forward only: `event_at` is the provider's time of the last
-- event applied, and an older event (a late `created` after `won`) changes nothing.
CREATE TABLE disputes (
    id                  TEXT PRIMARY KEY,
    provider            TEXT NOT NULL CHECK (provider IN ('razorpay', 'stripe')),
    gateway_dispute_id  TEXT NOT NULL,
    -- NULL: a dispute about a payment we do not know (recorded, no event).
    payment_id          TEXT REFERENCES payments (id),
    amount              BIGINT NOT NULL CHECK (amount >= 0),
    currency            TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason              TEXT,
    status              TEXT NOT NULL
        CHECK (status IN ('open', 'under_review', 'won', 'lost', 'closed')),
    gateway_status      TEXT NOT NULL,
    phase               TEXT,
    evidence_due_by     TIMESTAMPTZ,
    opened_at           TIMESTAMPTZ NOT NULL,
    event_at            TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, gateway_dispute_id)
);

CREATE INDEX disputes_of_payment ON disputes (payment_id) WHERE payment_id IS NOT NULL;

-- A dispute names the gateway's payment (Razorpay `pay_…`, Stripe's charge `ch_…`); its order
-- (Razorpay's `order_id`, Stripe's `payment_intent`) may be null in the payload.
CREATE INDEX payments_by_gateway_payment ON payments (gateway_payment_id)
    WHERE gateway_payment_id IS NOT NULL;
