-- One-time tokens a plugin on another host exchanges for its certificate. Only a hash of the
-- secret is kept. Keep in step with postgres/0002_join_tokens.sql.

CREATE TABLE join_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    namespaces    TEXT NOT NULL,                -- JSON array
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    used_by       TEXT
);
