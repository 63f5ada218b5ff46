-- Whether the operator's server-wide provider keys may serve a workspace
-- where it has no credential of its own.
ALTER TABLE workspaces ADD COLUMN use_operator_credentials boolean NOT NULL DEFAULT true;

-- BYOK provider credentials. The API key is stored only as AES-256-GCM
-- ciphertext (internal/secrets) bound to the row id; label is a mask.
CREATE TABLE credentials (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider     text NOT NULL,
    name         text NOT NULL,
    label        text NOT NULL,
    secret       bytea NOT NULL,
    base_url     text,
    disabled     boolean NOT NULL DEFAULT false,
    priority     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credentials_workspace_idx ON credentials (workspace_id);

-- Spend per budget scope and period: settled spend plus in-flight
-- reservations. A reservation is one conditional upsert, so concurrent
-- requests on any replica never push spent + reserved past a limit.
-- period_start is the UTC start of the period, or 1970-01-01 for lifetime.
CREATE TABLE spend (
    scope        text NOT NULL CHECK (scope IN ('key', 'guardrail')),
    scope_id     text NOT NULL,
    period_start timestamptz NOT NULL,
    spent        numeric NOT NULL DEFAULT 0 CHECK (spent >= 0),
    reserved     numeric NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scope_id, period_start)
);
