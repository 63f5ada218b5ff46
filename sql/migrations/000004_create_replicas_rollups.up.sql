-- Replicas announce themselves and heartbeat, so that the holds and the
-- started streams of a replica that died (kill -9, lost host) are resolved
-- by the others within a minute instead of waiting for a hold to expire.
CREATE TABLE replicas (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- generation_id, requested_model and streamed let a sweep write the
-- record of a request whose replica died before it could.
ALTER TABLE spend_holds
    ADD COLUMN generation_id   text,
    ADD COLUMN replica_id      text,
    ADD COLUMN requested_model text,
    ADD COLUMN streamed        boolean;
CREATE INDEX spend_holds_replica_idx ON spend_holds (replica_id);

-- A stream whose id was handed to a client (X-Generation-Id) before its
-- record exists; the record deletes it. Left behind by a dead replica, it
-- becomes an 'interrupted' record.
CREATE TABLE generation_starts (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL,
    key_id          text NOT NULL,
    member_id       text NOT NULL,
    requested_model text NOT NULL,
    replica_id      text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX generation_starts_replica_idx ON generation_starts (replica_id);

-- usage_estimated: token counts were estimated (the upstream reported none,
-- e.g. a cancelled call). anomaly: what the gateway corrected, e.g. usage
-- beyond what the request allowed, clamped.
ALTER TABLE generations
    ADD COLUMN usage_estimated boolean NOT NULL DEFAULT false,
    ADD COLUMN anomaly         text;

-- Spend per key and period, maintained as records are inserted (in the same
-- statement, so a retried insert never counts twice): GET /v1/key reads four
-- rows instead of summing a key's history. period is 'lifetime' (period_start
-- 1970-01-01), 'daily', 'weekly' or 'monthly'.
CREATE TABLE key_usage (
    key_id       text NOT NULL,
    period       text NOT NULL CHECK (period IN ('lifetime', 'daily', 'weekly', 'monthly')),
    period_start timestamptz NOT NULL,
    usage        numeric NOT NULL DEFAULT 0,
    byok_usage   numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period, period_start)
);
INSERT INTO key_usage (key_id, period, period_start, usage, byok_usage)
SELECT g.key_id, p.period, p.start,
       coalesce(sum(g.cost_usd) FILTER (WHERE NOT g.is_byok), 0),
       coalesce(sum(g.cost_usd) FILTER (WHERE g.is_byok), 0)
FROM generations g
CROSS JOIN LATERAL (VALUES
    ('lifetime', timestamptz '1970-01-01 00:00:00+00'),
    ('daily', date_trunc('day', g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    ('weekly', date_trunc('week', g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    ('monthly', date_trunc('month', g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
) AS p (period, start)
GROUP BY g.key_id, p.period, p.start;

-- The operator runs the deployment: only operator keys create workspaces and
-- decide whether a workspace may use the operator's own provider keys, which
-- new workspaces no longer do by default. On an existing database the
-- oldest owner key (the bootstrap key) becomes the operator's.
ALTER TABLE api_keys ADD COLUMN operator boolean NOT NULL DEFAULT false;
ALTER TABLE workspaces ALTER COLUMN use_operator_credentials SET DEFAULT false;
UPDATE api_keys SET operator = true WHERE id = (
    SELECT k.id FROM api_keys k JOIN members m ON m.id = k.member_id
    WHERE m.role = 'owner' ORDER BY k.created_at, k.id LIMIT 1);
