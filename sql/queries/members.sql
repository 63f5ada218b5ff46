-- name: MemberInsert :one
INSERT INTO members (id, workspace_id, name, email, role)
VALUES (@id, @workspace_id, @name, sqlc.narg('email'), @role)
RETURNING *;

-- name: MemberGetByID :one
SELECT * FROM members WHERE id = @id AND workspace_id = @workspace_id;

-- name: MemberList :many
SELECT * FROM members WHERE workspace_id = @workspace_id ORDER BY created_at, id;

-- name: MemberUpdate :one
UPDATE members SET
    name = coalesce(sqlc.narg('name'), name),
    email = coalesce(sqlc.narg('email'), email),
    role = coalesce(sqlc.narg('role'), role)
WHERE id = @id AND workspace_id = @workspace_id
RETURNING *;

-- name: MemberDelete :execrows
DELETE FROM members WHERE id = @id AND workspace_id = @workspace_id;

-- name: MemberLockOwners :many
-- Locks the workspace's owners so "at least one owner" holds under
-- concurrent demotions and removals.
SELECT id FROM members WHERE workspace_id = @workspace_id AND role = 'owner' FOR UPDATE;

-- name: MemberRole :one
SELECT role FROM members WHERE id = @id AND workspace_id = @workspace_id;

-- name: APIKeyMemberRole :one
SELECT m.role FROM api_keys k JOIN members m ON m.id = k.member_id
WHERE k.id = @id AND k.workspace_id = @workspace_id;
