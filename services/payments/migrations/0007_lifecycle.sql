-- The whole lifecycle: an authorization an operator releases ends `voided`, a created payment
-- nobody paid in time ends `expired` (reconciliation, after PAYMENT_EXPIRY_SECONDS). Both leave
-- the order free for a new payment (outside `payments_one_open_per_order`), and both rank below
-- `captured`: a capture that still arrives is recorded, never dropped.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN
    ('created', 'authorized', 'failed', 'captured', 'partially_refunded', 'refunded',
     'conflicted', 'expired', 'voided'));

-- What an operator asked to capture of an authorization when it is less than all of it; the
-- gateway's capture of that amount is then the expected one, not a conflict. NULL: all of it.
ALTER TABLE payments ADD COLUMN capture_requested BIGINT
    CHECK (capture_requested > 0 AND capture_requested <= amount);

-- Reconciliation's expiry pass: created payments by age (updated_at moves on every pass).
CREATE INDEX payments_expiring ON payments (created_at) WHERE status = 'created';
