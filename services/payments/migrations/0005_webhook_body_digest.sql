-- Razorpay's X-Razorpay-Event-Id is outside the signature: whoever holds one signed body could
-- send it again under a new id. The SHA-256 of the signed body is recorded beside the id and is
-- unique per provider in each day's partition as the id is (a body's day is its own created_at,
-- so every copy lands in the same partition). NULL (Stripe: its id is inside the signed body)
-- never conflicts. Daily partitions copy the default's indexes (rtmn_shared/partitions.py).
ALTER TABLE webhook_deliveries ADD COLUMN body_digest BYTEA;
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT inhrelid::regclass FROM pg_inherits
        WHERE inhparent = 'webhook_deliveries'::regclass
    LOOP
        EXECUTE format('CREATE UNIQUE INDEX ON %s (provider, body_digest)', part);
    END LOOP;
END
$$;
