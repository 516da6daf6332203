-- Consent: what each category may send on each channel, the user's own choices, addresses the
-- providers told us to stop mailing, quiet hours, and read state for the in-app inbox.

-- The defaults per category and channel, read by the claim statement itself. `locked`: the user
-- cannot turn it off (transactional); `quiet_hours`: waits for 09:00-21:00 in the user's zone.
-- Promotional SMS and WhatsApp are opt-in (TRAI), promotional email and push opt-out.
CREATE TABLE category_channels (
    category     TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'push', 'sms', 'whatsapp')),
    enabled      BOOLEAN NOT NULL,
    locked       BOOLEAN NOT NULL DEFAULT false,
    quiet_hours  BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (category, channel)
);
INSERT INTO category_channels (category, channel, enabled, locked, quiet_hours)
SELECT c.category, ch.channel,
       NOT (c.category = 'promotional' AND ch.channel IN ('sms', 'whatsapp')),
       c.category = 'transactional',
       c.category = 'promotional'
FROM (VALUES ('transactional'), ('account'), ('wallet'), ('promotional')) AS c (category),
     (VALUES ('email'), ('push'), ('sms'), ('whatsapp')) AS ch (channel);

-- Only what a user changed; everything else is the category's default.
CREATE TABLE preferences (
    user_id     TEXT NOT NULL,
    category    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    -- who changed it last: the user (api), a one-click unsubscribe, or a SendGrid event
    source      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category, channel),
    FOREIGN KEY (category, channel) REFERENCES category_channels (category, channel)
);

-- Addresses a hard bounce or a drop told us not to mail; keyed by address, so a user whose
-- address changes is mailed again at the new one.
CREATE TABLE email_suppressions (
    email       TEXT PRIMARY KEY,  -- lower case
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The user's time zone, for quiet hours (NULL: Asia/Kolkata).
ALTER TABLE recipients ADD COLUMN tz TEXT;

ALTER TABLE deliveries
    ADD COLUMN category TEXT NOT NULL DEFAULT 'transactional',
    -- A promotional message claimed in quiet hours waits until then (status stays queued).
    ADD COLUMN not_before TIMESTAMPTZ,
    ADD COLUMN read_at TIMESTAMPTZ,
    DROP CONSTRAINT deliveries_status_check,
    ADD CONSTRAINT deliveries_status_check CHECK (status IN
        ('queued', 'sent', 'failed', 'skipped', 'suppressed',
         'delivered', 'bounced', 'dropped'));

-- The event that sends a delivery held back by quiet hours again when its window opens: moved
-- into the outbox by notify's sweeper once due, in one statement.
CREATE TABLE deferred_events (
    delivery_id  UUID PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    due_at       TIMESTAMPTZ NOT NULL,
    event_id     UUID NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT,
    payload      JSONB NOT NULL
);
CREATE INDEX deferred_events_due ON deferred_events (due_at);

-- When `at` falls outside 09:00-21:00 in `tz`: the next 09:00 there; else NULL (send now).
CREATE FUNCTION quiet_hours_end(tz TEXT, at TIMESTAMPTZ) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN (at AT TIME ZONE tz)::time >= '09:00' AND (at AT TIME ZONE tz)::time < '21:00'
            THEN NULL
        WHEN (at AT TIME ZONE tz)::time < '09:00'
            THEN (date_trunc('day', at AT TIME ZONE tz) + interval '9 hours') AT TIME ZONE tz
        ELSE (date_trunc('day', at AT TIME ZONE tz) + interval '1 day 9 hours') AT TIME ZONE tz
    END
$$;

-- The in-app inbox: the user's pushes, newest first, paged by (created_at, id).
CREATE INDEX deliveries_inbox ON deliveries (user_id, created_at DESC, id DESC)
    WHERE channel = 'push';
