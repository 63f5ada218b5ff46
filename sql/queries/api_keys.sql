-- name: APIKeyInsert :one
INSERT INTO api_keys (id, workspace_id, member_id, name, label, hash)
VALUES (@id, @workspace_id, @member_id, @name, @label, @hash)
RETURNING *;

-- name: APIKeyGetByHash :one
-- The authentication lookup; joined with the member for its role.
SELECT k.*, m.role
FROM api_keys k
JOIN members m ON m.id = k.member_id
WHERE k.hash = @hash;
