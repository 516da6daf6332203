CREATE TABLE effects (
    consumer  TEXT NOT NULL,
    event_id  UUID NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
