ALTER TABLE generations
    DROP COLUMN metadata,
    DROP COLUMN client_version,
    DROP COLUMN client_name,
    DROP COLUMN app_categories,
    DROP COLUMN http_referer,
    DROP COLUMN app_title;
