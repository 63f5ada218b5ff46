ALTER TABLE generations DROP COLUMN cache_write_tokens;
