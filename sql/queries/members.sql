-- name: MemberInsert :one
INSERT INTO members (id, workspace_id, name, email, role)
VALUES (@id, @workspace_id, @name, sqlc.narg('email'), @role)
RETURNING *;
