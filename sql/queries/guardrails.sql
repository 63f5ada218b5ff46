-- name: GuardrailInsert :one
INSERT INTO guardrails (
    id, workspace_id, name, description, limit_usd, reset_interval, allowed_models, allowed_providers,
    ignored_models, ignored_providers, enforce_zdr, include_byok_in_budgets
) VALUES (
    @id, @workspace_id, @name, sqlc.narg('description'), sqlc.narg('limit_usd'), sqlc.narg('reset_interval'),
    @allowed_models, @allowed_providers, @ignored_models, @ignored_providers, @enforce_zdr, @include_byok_in_budgets
)
RETURNING *;

-- name: GuardrailGet :one
SELECT * FROM guardrails WHERE id = @id AND workspace_id = @workspace_id;

-- name: GuardrailList :many
SELECT * FROM guardrails WHERE workspace_id = @workspace_id ORDER BY created_at, id;

-- name: GuardrailUpdate :one
-- PUT: every field is written.
UPDATE guardrails SET
    name = @name, description = sqlc.narg('description'), limit_usd = sqlc.narg('limit_usd'),
    reset_interval = sqlc.narg('reset_interval'), allowed_models = @allowed_models,
    allowed_providers = @allowed_providers, ignored_models = @ignored_models,
    ignored_providers = @ignored_providers, enforce_zdr = @enforce_zdr,
    include_byok_in_budgets = @include_byok_in_budgets, updated_at = now()
WHERE id = @id AND workspace_id = @workspace_id
RETURNING *;

-- name: GuardrailDelete :execrows
DELETE FROM guardrails WHERE id = @id AND workspace_id = @workspace_id;

-- name: GuardrailAssignments :many
-- Who each guardrail of a workspace governs directly: members and keys
-- assigned to it.
SELECT 'member'::text AS kind, m.id, m.guardrail_id::text AS guardrail_id FROM members m
WHERE m.workspace_id = @workspace_id AND m.guardrail_id IS NOT NULL
UNION ALL
SELECT 'key'::text AS kind, k.id, k.guardrail_id::text AS guardrail_id FROM api_keys k
WHERE k.workspace_id = @workspace_id AND k.guardrail_id IS NOT NULL
ORDER BY 1, 2;

-- name: GuardrailUnassignMembers :exec
UPDATE members SET guardrail_id = NULL WHERE workspace_id = @workspace_id AND guardrail_id = @guardrail_id;

-- name: GuardrailUnassignKeys :exec
UPDATE api_keys SET guardrail_id = NULL, updated_at = now() WHERE workspace_id = @workspace_id AND guardrail_id = @guardrail_id;

-- name: GuardrailUnsetDefault :exec
UPDATE workspaces SET default_guardrail_id = NULL WHERE id = @workspace_id AND default_guardrail_id = @guardrail_id;

-- name: MemberSetGuardrail :execrows
UPDATE members SET guardrail_id = sqlc.narg('guardrail_id') WHERE id = @id AND workspace_id = @workspace_id;

-- name: APIKeySetGuardrail :execrows
UPDATE api_keys SET guardrail_id = sqlc.narg('guardrail_id'), updated_at = now() WHERE id = @id AND workspace_id = @workspace_id;
