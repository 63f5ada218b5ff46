-- A generation's attempts and routing decision are stored as the gateway
-- wrote them (json) rather than parsed into jsonb. They are only ever read
-- back whole, never queried inside, and building jsonb on every COPY was
-- about a seventh of PostgreSQL's CPU per record. PostgreSQL still checks
-- that each value is JSON. Rewrites the table: on a large one, expect the
-- record writer to hold its batches (in memory, then the spill file) while
-- the migration runs.
ALTER TABLE generations
    ALTER COLUMN attempts TYPE json USING attempts::json,
    ALTER COLUMN routing TYPE json USING routing::json;
