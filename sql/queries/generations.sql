-- name: GenerationInsert :batchexec
-- Sent as one pipelined batch per flush. Idempotent: a batch whose commit
-- was reported as failed (a cancelled or lost connection) can be retried;
-- the key's usage rollups grow only when the row is new, and the stream's
-- start marker (if any) is removed.
WITH ins AS (
    INSERT INTO generations (
        id, workspace_id, key_id, member_id, requested_model, model, provider, upstream_id,
        app, end_user, session_id, streamed, cancelled, status, error_type, finish_reason,
        native_finish_reason, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens,
        cost_usd, is_byok, latency_ms, ttft_ms, attempts, created_at, usage_estimated, anomaly
    ) VALUES (
        @id, @workspace_id, @key_id, @member_id, @requested_model, @model, @provider, @upstream_id,
        @app, @end_user, @session_id, @streamed, @cancelled, @status, @error_type, @finish_reason,
        @native_finish_reason, @prompt_tokens, @completion_tokens, @reasoning_tokens, @cached_tokens,
        @cost_usd, @is_byok, @latency_ms, @ttft_ms, @attempts, @created_at, @usage_estimated, @anomaly
    )
    ON CONFLICT (id) DO NOTHING
    RETURNING key_id, cost_usd, is_byok, created_at
), rollup AS (
    INSERT INTO key_usage AS u (key_id, period, period_start, usage, byok_usage)
    SELECT ins.key_id, p.period, p.start,
           CASE WHEN ins.is_byok THEN 0 ELSE ins.cost_usd END,
           CASE WHEN ins.is_byok THEN ins.cost_usd ELSE 0 END
    FROM ins CROSS JOIN LATERAL (VALUES
        ('lifetime', timestamptz '1970-01-01 00:00:00+00'),
        ('daily', date_trunc('day', ins.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
        ('weekly', date_trunc('week', ins.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
        ('monthly', date_trunc('month', ins.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
    ) AS p (period, start)
    ON CONFLICT (key_id, period, period_start) DO UPDATE
        SET usage = u.usage + EXCLUDED.usage, byok_usage = u.byok_usage + EXCLUDED.byok_usage
)
DELETE FROM generation_starts WHERE generation_starts.id = @id;

-- name: GenerationStartInsert :batchexec
-- A stream's id went out to its client before the record exists; if the
-- replica dies, the start becomes an 'interrupted' record. A start whose
-- record is already written is not inserted.
INSERT INTO generation_starts (id, workspace_id, key_id, member_id, requested_model, replica_id, created_at)
SELECT @id, @workspace_id, @key_id, @member_id, @requested_model, @replica_id, @created_at
WHERE NOT EXISTS (SELECT 1 FROM generations WHERE generations.id = @id)
ON CONFLICT (id) DO NOTHING;

-- name: GenerationGetByID :one
SELECT * FROM generations WHERE id = @id AND workspace_id = @workspace_id;

-- name: KeyUsageGet :many
-- A key's spend rollups of the current periods (UTC), and its lifetime.
SELECT period, usage, byok_usage FROM key_usage
WHERE key_id = @key_id AND (
    (period = 'lifetime') OR
    (period = 'daily' AND period_start = @day_start::timestamptz) OR
    (period = 'weekly' AND period_start = @week_start::timestamptz) OR
    (period = 'monthly' AND period_start = @month_start::timestamptz));

-- name: ReplicaHeartbeat :exec
INSERT INTO replicas (id) VALUES (@id)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: ReplicaDelete :exec
DELETE FROM replicas WHERE id = @id;

-- name: GenerationStartsInterrupt :execrows
-- Turns the starts of dead replicas (no heartbeat since @dead_before) into
-- records saying the request was interrupted: the id a client holds then
-- resolves. Their cost is unknown here; the budget sweep charges their holds.
WITH dead AS (
    DELETE FROM generation_starts s
    WHERE NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = s.replica_id AND r.heartbeat_at >= @dead_before::timestamptz)
    RETURNING s.*
)
INSERT INTO generations (id, workspace_id, key_id, member_id, requested_model, streamed, status,
                         error_type, finish_reason, latency_ms, created_at, anomaly)
SELECT id, workspace_id, key_id, member_id, requested_model, true, 200,
       'interrupted', 'error', 0, created_at, 'the gateway replica serving this stream stopped before it ended'
FROM dead
ON CONFLICT (id) DO NOTHING;

-- name: ReplicasForget :exec
-- Replicas silent for a day are gone for good.
DELETE FROM replicas WHERE heartbeat_at < @before::timestamptz;
