-- Code and reality in sync (issue 10): where each resource version came from (a command, the
-- synchronizer's read, discovery's list), resources no stack manages, and the stacks' policies.
-- Keep in step with postgres/0004_sync.sql.

ALTER TABLE resources ADD COLUMN managed BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE resources ADD COLUMN origin TEXT NOT NULL DEFAULT 'command';   -- command | sync | discovery
CREATE INDEX resources_by_native_id ON resources (type, native_id);

ALTER TABLE stacks ADD COLUMN policies TEXT NOT NULL DEFAULT '[]';       -- JSON array
ALTER TABLE stacks ADD COLUMN expires_at TEXT;                            -- from a TTL policy
ALTER TABLE stacks ADD COLUMN reconciled_at TEXT;                         -- last apply or auto-reconcile
