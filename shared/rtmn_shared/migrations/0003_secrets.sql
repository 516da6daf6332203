-- Provider credentials sealed under versioned keys (rtmn_shared/secrets.py).
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    ciphertext  BYTEA NOT NULL,
    key_version TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX secrets_key_version ON secrets (key_version);
