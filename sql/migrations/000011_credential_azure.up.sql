-- Azure OpenAI addressing of a workspace credential: {"api_version": ...,
-- "deployments": {"<upstream model>": "<deployment>"}}; null for other
-- providers.
ALTER TABLE credentials ADD COLUMN azure jsonb;
