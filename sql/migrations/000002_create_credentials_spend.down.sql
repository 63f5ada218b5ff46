DROP TABLE spend;
DROP TABLE credentials;
ALTER TABLE workspaces DROP COLUMN use_operator_credentials;
