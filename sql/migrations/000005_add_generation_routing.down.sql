ALTER TABLE generations DROP COLUMN routing;
