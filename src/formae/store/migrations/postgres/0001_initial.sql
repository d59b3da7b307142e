-- The initial schema. Keep in step with sqlite/0001_initial.sql: same tables, same columns,
-- same keys; only the column types differ (JSONB and TIMESTAMPTZ here).

CREATE TABLE commands (
    id               TEXT PRIMARY KEY,          -- time-sortable: ORDER BY id is creation order
    kind             TEXT NOT NULL,
    mode             TEXT NOT NULL,
    state            TEXT NOT NULL,
    forma            JSONB NOT NULL,
    simulate         BOOLEAN NOT NULL,
    force            BOOLEAN NOT NULL,
    message          TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX commands_by_state ON commands (state, id);

CREATE TABLE resource_updates (
    command_id         TEXT NOT NULL REFERENCES commands (id) ON DELETE CASCADE,
    update_id          TEXT NOT NULL,
    operation          TEXT NOT NULL,
    stack              TEXT NOT NULL,
    type               TEXT NOT NULL,
    label              TEXT NOT NULL,
    target             TEXT NOT NULL,
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL,
    request_id         TEXT,
    native_id          TEXT,
    desired_properties JSONB,
    prior_properties   JSONB,
    patch              JSONB,
    depends_on         JSONB NOT NULL,          -- array of update ids
    progress           JSONB,
    error_code         TEXT,
    error              TEXT,
    updated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (command_id, update_id)
);

CREATE TABLE resources (
    stack              TEXT NOT NULL,
    type               TEXT NOT NULL,
    label              TEXT NOT NULL,
    version            INTEGER NOT NULL,
    target             TEXT NOT NULL,
    native_id          TEXT,
    properties         JSONB NOT NULL,
    desired_properties JSONB NOT NULL,
    deleted            BOOLEAN NOT NULL,
    command_id         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stack, type, label, version)
);

CREATE TABLE stacks (
    label       TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE targets (
    label     TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    config    JSONB NOT NULL
);
