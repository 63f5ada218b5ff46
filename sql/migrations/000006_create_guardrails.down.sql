DROP FUNCTION spend_lease_flush;
DROP FUNCTION spend_lease_take;
DROP TABLE spend_leases;
DROP SEQUENCE spend_lease_ids;
ALTER TABLE replicas DROP COLUMN flush_seq;
CREATE TABLE spend_holds (
    id              text PRIMARY KEY,
    scope           text NOT NULL,
    scope_id        text NOT NULL,
    period_start    timestamptz NOT NULL,
    amount          numeric NOT NULL CHECK (amount >= 0),
    expires_at      timestamptz NOT NULL,
    generation_id   text,
    replica_id      text,
    requested_model text,
    streamed        boolean
);
DELETE FROM spend WHERE scope = 'workspace';
ALTER TABLE spend DROP CONSTRAINT spend_scope_check,
    ADD CONSTRAINT spend_scope_check CHECK (scope IN ('key', 'guardrail'));
ALTER TABLE workspaces DROP COLUMN default_guardrail_id, DROP COLUMN limit_usd, DROP COLUMN reset_interval;
ALTER TABLE api_keys DROP COLUMN guardrail_id;
ALTER TABLE members DROP COLUMN guardrail_id;
DROP TABLE guardrails;
