-- name: SpendReserve :one
-- Reserves amount against a limit in one statement: a new period row is
-- created with the reservation, an existing one grows only while
-- spent + reserved + amount stays within the limit. No row: refused.
INSERT INTO spend AS s (scope, scope_id, period_start, reserved)
SELECT @scope, @scope_id, @period_start, @amount::numeric
WHERE @amount::numeric <= @limit_usd::numeric
ON CONFLICT (scope, scope_id, period_start) DO UPDATE
    SET reserved = s.reserved + EXCLUDED.reserved, updated_at = now()
    WHERE s.spent + s.reserved + EXCLUDED.reserved <= @limit_usd::numeric
RETURNING s.spent, s.reserved;

-- name: SpendSettle :exec
-- Releases a reservation and records the actual cost (which may exceed
-- what was reserved only if the upstream overran max_tokens).
INSERT INTO spend AS s (scope, scope_id, period_start, spent)
VALUES (@scope, @scope_id, @period_start, @actual::numeric)
ON CONFLICT (scope, scope_id, period_start) DO UPDATE
    SET spent = s.spent + @actual::numeric,
        reserved = greatest(s.reserved - @reserved::numeric, 0),
        updated_at = now();

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
