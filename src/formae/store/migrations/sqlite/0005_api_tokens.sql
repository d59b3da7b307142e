-- Bearer tokens for the REST API beyond the agent's own ({home}/run/api.token). Only a hash of
-- the secret is kept. Keep in step with postgres/0005_api_tokens.sql.

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT
);
