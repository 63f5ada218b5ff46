CREATE TABLE workspaces (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    email        text,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, id)
);

-- API keys are stored only as a SHA-256 hash of the plaintext plus a short
-- label for humans; the plaintext is shown once at creation.
CREATE TABLE api_keys (
    id                    text PRIMARY KEY,
    workspace_id          text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    member_id             text NOT NULL,
    name                  text NOT NULL,
    label                 text NOT NULL,
    hash                  bytea NOT NULL UNIQUE,
    limit_usd             numeric,
    limit_reset           text CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    include_byok_in_limit boolean NOT NULL DEFAULT false,
    require_zdr           boolean NOT NULL DEFAULT false,
    expires_at            timestamptz,
    disabled              boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- A key's member is in the key's workspace: the key acts with its role.
    FOREIGN KEY (workspace_id, member_id) REFERENCES members (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_workspace_idx ON api_keys (workspace_id);

-- One row per inference request. Counts, costs, timings, identifiers and
-- attribution only: never prompt or completion text.
CREATE TABLE generations (
    id                text PRIMARY KEY,
    workspace_id      text NOT NULL,
    key_id            text NOT NULL,
    member_id         text NOT NULL,
    requested_model   text NOT NULL,
    model             text,
    provider          text,
    upstream_id       text,
    app               text,
    end_user          text,
    session_id        text,
    streamed          boolean NOT NULL,
    cancelled         boolean NOT NULL DEFAULT false,
    status            integer NOT NULL,
    error_type        text,
    finish_reason     text,
    native_finish_reason text,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    reasoning_tokens  integer NOT NULL DEFAULT 0,
    cached_tokens     integer NOT NULL DEFAULT 0,
    cost_usd          numeric NOT NULL DEFAULT 0,
    is_byok           boolean NOT NULL DEFAULT false,
    latency_ms        integer NOT NULL,
    ttft_ms           integer,
    attempts          jsonb NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL
);
CREATE INDEX generations_workspace_created_idx ON generations (workspace_id, created_at DESC);
CREATE INDEX generations_key_created_idx ON generations (key_id, created_at DESC);
