-- name: WorkspaceInsert :one
INSERT INTO workspaces (id, name) VALUES (@id, @name) RETURNING *;

-- name: WorkspaceCount :one
SELECT count(*) FROM workspaces;
