-- name: WorkspaceInsert :one
INSERT INTO workspaces (id, name) VALUES (@id, @name) RETURNING *;

-- name: WorkspaceCount :one
SELECT count(*) FROM workspaces;

-- name: BootstrapLock :exec
-- Serialises bootstrap across replicas starting at once (released at commit).
SELECT pg_advisory_xact_lock(7274065);
