-- name: SpendLeaseSweep :many
-- Charges and deletes the leases that will never be flushed: expired ones,
-- and those of replicas with no heartbeat since @dead_before. A lease is
-- charged in full: what its requests cost was known only to the replica
-- that died, and over-charging one lease is the price of never
-- under-counting.
WITH l AS (
    DELETE FROM spend_leases sl
    WHERE sl.expires_at < @now::timestamptz
       OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = sl.replica_id AND r.heartbeat_at >= @dead_before::timestamptz)
    RETURNING scope, scope_id, period_start, amount
), total AS (
    SELECT scope, scope_id, period_start, sum(amount) AS amount FROM l GROUP BY scope, scope_id, period_start
)
UPDATE spend s
SET spent = s.spent + total.amount, reserved = greatest(s.reserved - total.amount, 0), updated_at = now()
FROM total
WHERE s.scope = total.scope AND s.scope_id = total.scope_id AND s.period_start = total.period_start
RETURNING s.scope, s.scope_id, total.amount::numeric AS amount;

-- name: SpendLeaseCount :one
SELECT count(*) FROM spend_leases WHERE replica_id = @replica_id;

-- name: SpendGet :one
SELECT spent, reserved FROM spend
WHERE scope = @scope AND scope_id = @scope_id AND period_start = @period_start;

-- name: SpendSeed :exec
-- When a key gets a limit (or a new period kind), count what it already
-- spent in the period from its generation records.
INSERT INTO spend AS s (scope, scope_id, period_start, spent)
SELECT 'key', @key_id::text, @period_start::timestamptz, coalesce(sum(g.cost_usd), 0)
FROM generations g
WHERE g.key_id = @key_id::text AND g.created_at >= @period_start::timestamptz
  AND (@include_byok::bool OR NOT g.is_byok)
ON CONFLICT (scope, scope_id, period_start) DO UPDATE SET spent = greatest(s.spent, EXCLUDED.spent);

-- name: SpendLeaseReturn :many
-- Hands back every lease a replica still holds: called at shutdown once
-- its last flush landed, so what remains is unused (or a grant whose answer
-- was lost).
WITH l AS (
    DELETE FROM spend_leases WHERE replica_id = @replica_id
    RETURNING scope, scope_id, period_start, amount
)
UPDATE spend s
SET reserved = greatest(s.reserved - l.amount, 0), updated_at = now()
FROM l
WHERE s.scope = l.scope AND s.scope_id = l.scope_id AND s.period_start = l.period_start
RETURNING s.scope;

-- name: SpendSeedWorkspace :exec
-- When a workspace gets a budget (or a new period kind), count what it
-- already spent in the period from its generation records.
INSERT INTO spend AS s (scope, scope_id, period_start, spent)
SELECT 'workspace', @workspace_id::text, @period_start::timestamptz, coalesce(sum(g.cost_usd), 0)
FROM generations g
WHERE g.workspace_id = @workspace_id::text AND g.created_at >= @period_start::timestamptz
ON CONFLICT (scope, scope_id, period_start) DO UPDATE SET spent = greatest(s.spent, EXCLUDED.spent);

-- name: SpendHistory :many
-- A budget's periods, newest first: what counted toward it in each.
SELECT period_start, spent FROM spend
WHERE scope = @scope AND scope_id = @scope_id
ORDER BY period_start DESC
LIMIT @max_periods;

-- name: KeyUsageHistory :many
-- A key's spend per period of one kind, newest first (from the rollups
-- maintained as records are written).
SELECT period_start, usage, byok_usage FROM key_usage
WHERE key_id = @key_id AND period = @period
ORDER BY period_start DESC
LIMIT @max_periods;

-- name: MemberUsageHistory :many
-- A member's spend per period of one kind, newest first: the rollups of
-- its keys, summed.
SELECT ku.period_start, sum(ku.usage)::numeric AS usage, sum(ku.byok_usage)::numeric AS byok_usage
FROM key_usage ku
JOIN api_keys k ON k.id = ku.key_id
WHERE k.workspace_id = @workspace_id AND k.member_id = @member_id AND ku.period = @period
GROUP BY ku.period_start
ORDER BY ku.period_start DESC
LIMIT @max_periods;
