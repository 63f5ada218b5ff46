-- name: SpendReserve :one
-- Reserves amount against a limit in one statement: a new period row is
-- created with the reservation, an existing one grows only while
-- spent + reserved + amount stays within the limit, and the hold is
-- recorded. No row: refused.
WITH reserved AS (
    INSERT INTO spend AS s (scope, scope_id, period_start, reserved)
    SELECT @scope::text, @scope_id::text, @period_start::timestamptz, @amount::numeric
    WHERE @amount::numeric <= @limit_usd::numeric
    ON CONFLICT (scope, scope_id, period_start) DO UPDATE
        SET reserved = s.reserved + EXCLUDED.reserved, updated_at = now()
        WHERE s.spent + s.reserved + EXCLUDED.reserved <= @limit_usd::numeric
    RETURNING s.spent, s.reserved
), hold AS (
    INSERT INTO spend_holds (id, scope, scope_id, period_start, amount, expires_at, generation_id, replica_id, requested_model, streamed)
    SELECT @hold_id::text, @scope::text, @scope_id::text, @period_start::timestamptz, @amount::numeric, @expires_at::timestamptz,
           NULLIF(@generation_id::text, ''), NULLIF(@replica_id::text, ''), @requested_model::text, @streamed::bool
    FROM reserved
)
SELECT spent, reserved FROM reserved;

-- name: SpendSettle :execrows
-- Releases a hold and records the actual cost, never more than was
-- reserved: the reservation is the request's upper bound, so spend cannot
-- pass a limit whatever an upstream reports. No row: the hold was already
-- swept (and charged).
WITH h AS (
    DELETE FROM spend_holds WHERE id = @hold_id RETURNING scope, scope_id, period_start, amount
)
UPDATE spend s
SET spent = s.spent + least(@actual::numeric, h.amount), reserved = greatest(s.reserved - h.amount, 0), updated_at = now()
FROM h
WHERE s.scope = h.scope AND s.scope_id = h.scope_id AND s.period_start = h.period_start;

-- name: SpendSweep :many
-- Resolves holds whose request will never settle: expired ones, and those of
-- replicas with no heartbeat since @dead_before. Each is charged the cost its
-- generation record shows where one exists (the replica answered, then died
-- before settling) and its worst case only where nothing is known.
WITH h AS (
    DELETE FROM spend_holds sh
    WHERE sh.expires_at < @now::timestamptz
       OR (sh.replica_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM replicas r WHERE r.id = sh.replica_id AND r.heartbeat_at >= @dead_before::timestamptz))
    RETURNING scope, scope_id, period_start, amount, generation_id, requested_model, streamed
), charged AS (
    SELECT h.scope, h.scope_id, h.period_start, h.amount AS released,
           CASE WHEN g.id IS NULL OR g.error_type = 'interrupted' THEN h.amount
                WHEN g.is_byok AND NOT coalesce(k.include_byok_in_limit, false) AND h.scope = 'key' THEN 0
                ELSE least(g.cost_usd, h.amount) END AS charge,
           g.id IS NOT NULL AND g.error_type IS DISTINCT FROM 'interrupted' AS known
    FROM h
    LEFT JOIN generations g ON g.id = h.generation_id
    LEFT JOIN api_keys k ON k.id = h.scope_id AND h.scope = 'key'
), interrupted AS (
    -- A request whose replica died before writing its record: its id (sent
    -- to the client) resolves as interrupted. The key's own hold names it.
    INSERT INTO generations (id, workspace_id, key_id, member_id, requested_model, streamed, status,
                             error_type, finish_reason, latency_ms, created_at, anomaly)
    SELECT DISTINCT ON (h.generation_id) h.generation_id, k.workspace_id, k.id, k.member_id,
           coalesce(h.requested_model, ''), coalesce(h.streamed, false), CASE WHEN h.streamed THEN 200 ELSE 0 END,
           'interrupted', 'error', 0, now(),
           'the gateway replica serving this request stopped before recording it; its budget holds were charged the reserved worst case'
    FROM h
    JOIN api_keys k ON k.id = h.scope_id AND h.scope = 'key'
    LEFT JOIN generations g ON g.id = h.generation_id
    WHERE h.generation_id IS NOT NULL AND g.id IS NULL
    ON CONFLICT (id) DO NOTHING
), total AS (
    SELECT scope, scope_id, period_start, sum(released) AS released, sum(charge) AS charge, bool_and(known) AS known
    FROM charged GROUP BY scope, scope_id, period_start
)
UPDATE spend s
SET spent = s.spent + total.charge, reserved = greatest(s.reserved - total.released, 0), updated_at = now()
FROM total
WHERE s.scope = total.scope AND s.scope_id = total.scope_id AND s.period_start = total.period_start
RETURNING s.scope, s.scope_id, total.charge::numeric AS amount, total.known::bool AS known;

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
