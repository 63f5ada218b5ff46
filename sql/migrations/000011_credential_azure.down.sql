ALTER TABLE credentials DROP COLUMN azure;
