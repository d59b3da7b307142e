-- Code and reality in sync (issue 10): where each resource version came from (a command, the
-- synchronizer's read, discovery's list), resources no stack manages, and the stacks' policies.
-- Keep in step with sqlite/0004_sync.sql.

ALTER TABLE resources ADD COLUMN managed BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE resources ADD COLUMN origin TEXT NOT NULL DEFAULT 'command';   -- command | sync | discovery
CREATE INDEX resources_by_native_id ON resources (type, native_id);

ALTER TABLE stacks ADD COLUMN policies JSONB NOT NULL DEFAULT '[]';
ALTER TABLE stacks ADD COLUMN expires_at TIMESTAMPTZ;                     -- from a TTL policy
ALTER TABLE stacks ADD COLUMN reconciled_at TIMESTAMPTZ;                  -- last apply or auto-reconcile
