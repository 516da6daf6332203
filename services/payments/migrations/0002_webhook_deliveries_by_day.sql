-- Webhook deliveries partitioned by the day of the provider event's own time (Razorpay's
-- `created_at`, Stripe's `created`), the same on every retry: as the shared inbox (shared
-- migration 0004, whose comments give the reasons), old days are dropped whole, each partition's
-- primary key (provider, event_id) keeps dedupe exact, and the rows already here stay as one
-- partition whose primary key still covers them whatever their day.
DO $$
DECLARE
    cutover date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_legacy;
    ALTER INDEX webhook_deliveries_pkey RENAME TO webhook_deliveries_legacy_pkey;
    CREATE TABLE webhook_deliveries (
        provider        TEXT NOT NULL,
        event_id        TEXT NOT NULL,
        event_type      TEXT NOT NULL,
        received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
        day             DATE NOT NULL
    ) PARTITION BY RANGE (day);
    IF EXISTS (SELECT 1 FROM webhook_deliveries_legacy) THEN
        EXECUTE format(
            'ALTER TABLE webhook_deliveries_legacy ADD COLUMN day DATE NOT NULL DEFAULT %L',
            cutover);
        ALTER TABLE webhook_deliveries_legacy ALTER COLUMN day DROP DEFAULT;
        EXECUTE format(
            'ALTER TABLE webhook_deliveries ATTACH PARTITION webhook_deliveries_legacy '
            'FOR VALUES FROM (MINVALUE) TO (%L)', cutover + 2);
    ELSE
        DROP TABLE webhook_deliveries_legacy;
    END IF;
    CREATE TABLE webhook_deliveries_default PARTITION OF webhook_deliveries
        (PRIMARY KEY (provider, event_id)) DEFAULT;
END
$$;
