-- The REZ-coin ledger: immutable entries, a balance per user kept equal to their sum, and what
-- the wallet knows about each payment and refund it has seen.

-- Users read model, fed by user.registered; only the tier matters here.
CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    tier           TEXT,
    registered_at  TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per payment.success seen: what it earned, even when that is 0 coins, so a refund can
-- tell "earned nothing" from "credit not seen yet".
CREATE TABLE earnings (
    payment_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount >= 0),
    currency    TEXT NOT NULL,
    tier        TEXT NOT NULL,
    coins       BIGINT NOT NULL CHECK (coins >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per payment.refunded seen. settled_at is NULL while the refund waits for its payment's
-- credit (it arrived first); the credit settles it in its own transaction.
CREATE TABLE refunds (
    refund_id       TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    refunded_total  BIGINT NOT NULL CHECK (refunded_total > 0),
    currency        TEXT NOT NULL,
    "full"          BOOLEAN NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at      TIMESTAMPTZ,
    coins           BIGINT CHECK (coins >= 0)
);

CREATE INDEX refunds_pending ON refunds (payment_id) WHERE settled_at IS NULL;

CREATE TABLE balances (
    user_id     TEXT PRIMARY KEY,
    coins       BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The ledger. coins is signed: a credit adds, a reversal subtracts. A reversal may take the
-- balance below zero (the coins were spent meanwhile); shortfall records by how much it did.
CREATE TABLE entries (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id       UUID NOT NULL UNIQUE,
    user_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    coins          BIGINT NOT NULL,
    payment_id     TEXT NOT NULL,
    refund_id      TEXT,
    balance_after  BIGINT NOT NULL,
    shortfall      BIGINT GENERATED ALWAYS AS (
                       CASE WHEN coins < 0 AND balance_after < 0
                            THEN LEAST(-coins, -balance_after) ELSE 0 END) STORED,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT entries_kind CHECK (
        (kind = 'cashback' AND coins > 0 AND refund_id IS NULL)
        OR (kind = 'cashback_reversal' AND coins < 0 AND refund_id IS NOT NULL)),
    -- The effect key: one credit per payment, one reversal per refund, whatever is replayed.
    CONSTRAINT entries_effect UNIQUE NULLS NOT DISTINCT (payment_id, kind, refund_id)
);

CREATE INDEX entries_by_user ON entries (user_id, seq DESC);

-- Entries are facts: a correction is a new entry, never an edit.
CREATE FUNCTION entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_are_immutable();
CREATE TRIGGER entries_not_truncated BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_are_immutable();

-- The service's role owns the table; taking the rights away too means a stray UPDATE fails on
-- privileges before it even reaches the trigger.
REVOKE UPDATE, DELETE, TRUNCATE ON entries FROM CURRENT_USER;
