-- App attribution on every generation: `app` is the app id (the referer's
-- host or the client's name); the rest is what the app's headers said,
-- bounded and sanitised. metadata is the request's own string tags.
ALTER TABLE generations
    ADD COLUMN app_title text,
    ADD COLUMN http_referer text,
    ADD COLUMN app_categories text[] NOT NULL DEFAULT '{}',
    ADD COLUMN client_name text,
    ADD COLUMN client_version text,
    ADD COLUMN metadata jsonb;
