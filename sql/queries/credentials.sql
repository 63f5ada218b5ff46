-- name: CredentialInsert :one
INSERT INTO credentials (id, workspace_id, provider, name, label, secret, base_url, disabled, priority, data_policy, azure)
VALUES (@id, @workspace_id, @provider, @name, @label, @secret, sqlc.narg('base_url'), @disabled, @priority, sqlc.narg('data_policy'), sqlc.narg('azure'))
RETURNING *;

-- name: CredentialGetByID :one
SELECT * FROM credentials WHERE id = @id AND workspace_id = @workspace_id;

-- name: CredentialList :many
SELECT * FROM credentials WHERE workspace_id = @workspace_id ORDER BY provider, priority, created_at, id;

-- name: CredentialUpdate :one
-- Every column is written: the caller merges the patch into the current row.
UPDATE credentials SET
    name = @name, label = @label, secret = @secret, base_url = sqlc.narg('base_url'),
    disabled = @disabled, priority = @priority, data_policy = sqlc.narg('data_policy'), azure = sqlc.narg('azure'),
    updated_at = now()
WHERE id = @id AND workspace_id = @workspace_id
RETURNING *;

-- name: CredentialDelete :execrows
DELETE FROM credentials WHERE id = @id AND workspace_id = @workspace_id;

-- name: CredentialListAll :many
-- For master key rotation: every credential, oldest first.
SELECT id, workspace_id, secret FROM credentials ORDER BY id;

-- name: CredentialSetSecret :execrows
-- Rotation writes a re-encrypted secret only if the row still holds the
-- ciphertext it read, so a concurrent update is never overwritten.
UPDATE credentials SET secret = @new_secret WHERE id = @id AND secret = @old_secret;
