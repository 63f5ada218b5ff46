DROP INDEX generations_workspace_created_idx;
DROP INDEX generations_key_created_idx;
CREATE INDEX generations_workspace_created_idx ON generations (workspace_id, created_at DESC);
CREATE INDEX generations_key_created_idx ON generations (key_id, created_at DESC);
