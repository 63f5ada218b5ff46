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
    INSERT INTO spend_holds (id, scope, scope_id, period_start, amount, expires_at)
    SELECT @hold_id::text, @scope::text, @scope_id::text, @period_start::timestamptz, @amount::numeric, @expires_at::timestamptz
    FROM reserved
)
SELECT spent, reserved FROM reserved;

-- name: SpendSettle :execrows
-- Releases a hold and records the actual cost (which may exceed what was
-- reserved only if the upstream overran max_tokens). No row: the hold was
-- already swept (and its amount charged).
WITH h AS (
    DELETE FROM spend_holds WHERE id = @hold_id RETURNING scope, scope_id, period_start, amount
)
UPDATE spend s
SET spent = s.spent + @actual::numeric, reserved = greatest(s.reserved - h.amount, 0), updated_at = now()
FROM h
WHERE s.scope = h.scope AND s.scope_id = h.scope_id AND s.period_start = h.period_start;

-- name: SpendSweep :many
-- Resolves holds whose request never settled: their worst-case amount is
-- charged as spent (spend is never lost; the actual cost is unknown).
WITH h AS (
    DELETE FROM spend_holds WHERE expires_at < @now::timestamptz
    RETURNING scope, scope_id, period_start, amount
), total AS (
    SELECT scope, scope_id, period_start, sum(amount) AS amount FROM h GROUP BY scope, scope_id, period_start
)
UPDATE spend s
SET spent = s.spent + total.amount, reserved = greatest(s.reserved - total.amount, 0), updated_at = now()
FROM total
WHERE s.scope = total.scope AND s.scope_id = total.scope_id AND s.period_start = total.period_start
RETURNING s.scope, s.scope_id, total.amount::numeric AS amount;

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
