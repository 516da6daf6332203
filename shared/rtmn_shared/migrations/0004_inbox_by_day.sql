-- The inbox partitioned by the day of each event's own time (rtmn_shared/dedupe.py), so that
-- old days are dropped whole instead of growing for ever (rtmn_shared/partitions.py keeps them).
-- A redelivered event carries the same time, so it lands in the same partition as its first
-- delivery: each partition's own primary key (consumer, event_id) keeps dedupe exact, with no
-- index over the whole history. The DEFAULT partition catches a day nobody made a partition for
-- and is the template of the daily ones.
--
-- Rows already here stay, as one partition for every day up to the day after tomorrow: their
-- events' times were not recorded, but this partition's primary key is still (consumer,
-- event_id), so a redelivery of any of them, whatever its day, meets its row. It is dropped
-- like any other partition once all its days are past the window.
DO $$
DECLARE
    cutover date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    ALTER TABLE inbox RENAME TO inbox_legacy;
    ALTER INDEX inbox_pkey RENAME TO inbox_legacy_pkey;
    CREATE TABLE inbox (
        consumer      TEXT NOT NULL,
        event_id      UUID NOT NULL,
        processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        day           DATE NOT NULL
    ) PARTITION BY RANGE (day);
    IF EXISTS (SELECT 1 FROM inbox_legacy) THEN
        -- A constant default: no rewrite of the table, only a catalogue entry.
        EXECUTE format('ALTER TABLE inbox_legacy ADD COLUMN day DATE NOT NULL DEFAULT %L', cutover);
        ALTER TABLE inbox_legacy ALTER COLUMN day DROP DEFAULT;
        EXECUTE format(
            'ALTER TABLE inbox ATTACH PARTITION inbox_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
            cutover + 2);
    ELSE
        DROP TABLE inbox_legacy;
    END IF;
    CREATE TABLE inbox_default PARTITION OF inbox (PRIMARY KEY (consumer, event_id)) DEFAULT;
END
$$;
