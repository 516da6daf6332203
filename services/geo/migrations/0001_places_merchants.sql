-- Geocoding results we may keep indefinitely (place id, formatted address), and merchant points.
-- PostGIS lives in schema public (created by provisioning); the search_path here is only "geo",
-- so its types, functions and operators are named with their schema.

CREATE TABLE places (
    address_key        TEXT PRIMARY KEY,           -- the normalised address
    address            TEXT NOT NULL,              -- as first asked, for operators
    place_id           TEXT NOT NULL,
    formatted_address  TEXT NOT NULL,
    partial_match      BOOLEAN NOT NULL,
    -- Coordinates are deliberately absent: Google's terms allow caching them for 30 days at
    -- most, so they live only in Redis with a TTL; a place id may be stored without limit.
    fetched_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE merchants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    lat         DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng         DOUBLE PRECISION NOT NULL CHECK (lng BETWEEN -180 AND 180),
    -- Derived, so the point can never disagree with lat/lng (and COPY needs no PostGIS codec).
    location    public.geography(Point, 4326) GENERATED ALWAYS AS (
                    public.ST_SetSRID(public.ST_MakePoint(lng, lat), 4326)::public.geography
                ) STORED,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX merchants_location ON merchants USING gist (location);
