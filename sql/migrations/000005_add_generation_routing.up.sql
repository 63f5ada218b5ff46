-- The routing decision of each generation: the strategy and its inputs,
-- every candidate endpoint with its score or the filter that excluded it,
-- and the order chosen. Catalog slugs and numbers only, never request text.
ALTER TABLE generations ADD COLUMN routing jsonb;
