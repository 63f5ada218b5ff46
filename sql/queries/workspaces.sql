-- name: WorkspaceInsert :one
INSERT INTO workspaces (id, name, use_operator_credentials)
VALUES (@id, @name, @use_operator_credentials)
RETURNING *;

-- name: WorkspaceCount :one
SELECT count(*) FROM workspaces;

-- name: WorkspaceGetByID :one
SELECT * FROM workspaces WHERE id = @id;

-- name: WorkspaceUpdate :one
UPDATE workspaces SET
    name = coalesce(sqlc.narg('name'), name),
    use_operator_credentials = coalesce(sqlc.narg('use_operator_credentials'), use_operator_credentials),
    require_zdr = coalesce(sqlc.narg('require_zdr'), require_zdr),
    default_guardrail_id = CASE WHEN @set_default_guardrail::bool THEN sqlc.narg('default_guardrail_id') ELSE default_guardrail_id END,
    limit_usd = CASE WHEN @set_limit::bool THEN sqlc.narg('limit_usd') ELSE limit_usd END,
    reset_interval = CASE WHEN @set_limit::bool THEN sqlc.narg('reset_interval') ELSE reset_interval END
WHERE id = @id
RETURNING *;

-- name: WorkspaceDelete :execrows
DELETE FROM workspaces WHERE id = @id;

-- name: BootstrapLock :exec
-- Serialises bootstrap across replicas starting at once (released at commit).
SELECT pg_advisory_xact_lock(7274065);
