-- Notify: who to reach (a read model of user.registered), their devices, and every delivery.

CREATE TABLE recipients (
    user_id     TEXT PRIMARY KEY,
    email       TEXT,
    first_name  TEXT,
    phone       TEXT,
    locale      TEXT,
    tier        TEXT,
    -- The time of the event this row reflects: an older event replayed later never overwrites.
    as_of       TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    token               TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    platform            TEXT NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    active              BOOLEAN NOT NULL DEFAULT true,
    deactivated_reason  TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX devices_active_by_user ON devices (user_id) WHERE active;

-- One row per (source, channel, recipient, template): the idempotency record of every send.
-- `source` names what the message is about (payment:<id>, wallet:<entry>, user:<id> for the
-- welcome, request:<id> for a notification.requested command), so neither a redelivered event
-- nor the same fact emitted twice under new event ids sends twice; `event_id` is the first
-- event that asked for it.
CREATE TABLE deliveries (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    source               TEXT NOT NULL,
    event_id             UUID NOT NULL,
    channel              TEXT NOT NULL CHECK (channel IN ('email', 'push')),
    user_id              TEXT NOT NULL,
    template             TEXT NOT NULL,
    title                TEXT,
    body                 TEXT,
    status               TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
                             ('queued', 'sent', 'failed', 'skipped',
                              'delivered', 'bounced', 'dropped')),
    provider             TEXT,
    provider_message_id  TEXT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    -- A worker that claimed the row owns it until then; a crashed worker's claim runs out.
    lease_until          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at              TIMESTAMPTZ,
    UNIQUE (source, channel, user_id, template)
);
CREATE INDEX deliveries_by_user ON deliveries (user_id, created_at DESC);
CREATE INDEX deliveries_by_provider_message ON deliveries (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- Per-token progress of one push delivery, so a retry sends only to the tokens that failed.
CREATE TABLE push_targets (
    delivery_id  UUID NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    message_id   TEXT,
    last_error   TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (delivery_id, token)
);

-- POST /api/notify/send: one command per caller-supplied request id, however often retried.
CREATE TABLE send_requests (
    request_id  TEXT PRIMARY KEY,
    event_id    UUID NOT NULL,
    requested_by TEXT NOT NULL,
    user_count  INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A campaign is split into batches once, whichever copy of its command arrives first.
CREATE TABLE campaigns (
    request_id  TEXT PRIMARY KEY,
    batches     INTEGER NOT NULL,
    user_count  INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
