-- name: APIKeyInsert :one
INSERT INTO api_keys (
    id, workspace_id, member_id, name, label, hash, limit_usd, limit_reset,
    include_byok_in_limit, require_zdr, expires_at, disabled, operator
) VALUES (
    @id, @workspace_id, @member_id, @name, @label, @hash, sqlc.narg('limit_usd'), sqlc.narg('limit_reset'),
    @include_byok_in_limit, @require_zdr, sqlc.narg('expires_at'), @disabled, @operator
)
RETURNING *;

-- name: APIKeyGetByHash :one
-- The authentication lookup; joined with the member for its role and
-- guardrail.
SELECT k.*, m.role, m.guardrail_id AS member_guardrail_id
FROM api_keys k
JOIN members m ON m.id = k.member_id
WHERE k.hash = @hash;

-- name: APIKeyGetByID :one
SELECT * FROM api_keys WHERE id = @id AND workspace_id = @workspace_id;

-- name: APIKeyList :many
SELECT * FROM api_keys
WHERE workspace_id = @workspace_id
  AND (sqlc.narg('member_id')::text IS NULL OR member_id = sqlc.narg('member_id'))
ORDER BY created_at, id;

-- name: APIKeyUpdate :one
-- Every column is written: the caller merges the patch into the current row.
UPDATE api_keys SET
    name = @name, limit_usd = sqlc.narg('limit_usd'), limit_reset = sqlc.narg('limit_reset'),
    include_byok_in_limit = @include_byok_in_limit, require_zdr = @require_zdr,
    expires_at = sqlc.narg('expires_at'), disabled = @disabled, updated_at = now()
WHERE id = @id AND workspace_id = @workspace_id
RETURNING *;

-- name: APIKeyDelete :execrows
DELETE FROM api_keys WHERE id = @id AND workspace_id = @workspace_id;
