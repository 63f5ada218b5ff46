ALTER TABLE generations DROP COLUMN zdr;
ALTER TABLE credentials DROP COLUMN data_policy;
ALTER TABLE workspaces DROP COLUMN require_zdr;
