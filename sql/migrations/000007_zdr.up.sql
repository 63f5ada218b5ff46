-- Zero data retention end to end: a workspace may require ZDR for every
-- request; a credential whose base_url sends traffic elsewhere carries its
-- own data policy (NULL: not ZDR, trains on data); a generation records
-- whether it was restricted to ZDR endpoints.
ALTER TABLE workspaces ADD COLUMN require_zdr boolean NOT NULL DEFAULT false;
ALTER TABLE credentials ADD COLUMN data_policy jsonb;
ALTER TABLE generations ADD COLUMN zdr boolean NOT NULL DEFAULT false;
