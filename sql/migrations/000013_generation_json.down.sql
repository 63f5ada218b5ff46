ALTER TABLE generations
    ALTER COLUMN attempts TYPE jsonb USING attempts::jsonb,
    ALTER COLUMN routing TYPE jsonb USING routing::jsonb;
