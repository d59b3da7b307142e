-- Several agents over one database (issue 16): who is alive, who executes which command (with a
-- fencing generation), who leads the periodic work, which stacks each command claims, and the
-- sync runs a new leader continues. Keep in step with sqlite/0006_cluster.sql.

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,          -- the home id ({home}/agent.id): stable across restarts
    owner          TEXT NOT NULL,             -- this run of it, as in commands.lease_owner
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    version        TEXT NOT NULL,
    api_url        TEXT NOT NULL,
    plugin_address TEXT NOT NULL,             -- the address plugins on other hosts dial (join tokens)
    started_at     TIMESTAMPTZ NOT NULL,
    renewed_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL       -- alive while in the future (the database's clock)
);

-- Bumped whenever a command's lease changes hands; every write of a running command carries the
-- generation its executor holds, so a paused agent's late writes match nothing.
ALTER TABLE commands ADD COLUMN lease_generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX commands_by_lease ON commands (lease_expires_at);

CREATE TABLE leader_leases (
    name       TEXT PRIMARY KEY,              -- 'schedules': sync, discovery, stack policies
    owner      TEXT,
    generation INTEGER NOT NULL,
    expires_at TIMESTAMPTZ
);

-- What each command may change, stored with the command (its position: the smallest seq).
CREATE TABLE command_claims (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id TEXT NOT NULL REFERENCES commands (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,                 -- stack | resource | everything
    stack      TEXT,
    type       TEXT,
    label      TEXT
);
CREATE INDEX command_claims_by_command ON command_claims (command_id);

CREATE TABLE sync_runs (
    id          TEXT PRIMARY KEY,
    query       TEXT NOT NULL,
    state       TEXT NOT NULL,
    total       INTEGER NOT NULL,
    counts      JSONB NOT NULL,               -- outcome -> number, of the resources up to checkpoint
    errors      JSONB NOT NULL,
    checkpoint  TEXT,                         -- every resource up to this key is read
    owner       TEXT,                         -- the agent running it
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
