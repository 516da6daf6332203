-- One row per upload. Renditions are stored by key only: URLs are built when read, because
-- a CDN host can change and presigned URLs expire.
CREATE TABLE media (
    media_id      UUID PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    folder        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('image', 'product')),
    source_format TEXT NOT NULL CHECK (source_format IN ('JPEG', 'PNG', 'WEBP')),
    source_bytes  INTEGER NOT NULL CHECK (source_bytes > 0),
    source_width  INTEGER NOT NULL CHECK (source_width > 0),
    source_height INTEGER NOT NULL CHECK (source_height > 0),
    -- {"large": {"key": "...", "width": 1200, "height": 1200, "bytes": 123}, ...}
    renditions    JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX media_owner_created ON media (owner_id, created_at DESC);
