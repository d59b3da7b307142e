-- One-time tokens a plugin on another host exchanges for its certificate. Only a hash of the
-- secret is kept. Keep in step with sqlite/0002_join_tokens.sql.

CREATE TABLE join_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    namespaces    JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    used_by       TEXT
);
