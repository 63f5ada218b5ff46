-- name: GenerationInsert :batchexec
-- Sent as one pipelined batch per flush. Idempotent: a batch whose commit
-- was reported as failed (a cancelled or lost connection) can be retried.
INSERT INTO generations (
    id, workspace_id, key_id, member_id, requested_model, model, provider, upstream_id,
    app, end_user, session_id, streamed, cancelled, status, error_type, finish_reason,
    native_finish_reason, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens,
    cost_usd, is_byok, latency_ms, ttft_ms, attempts, created_at
) VALUES (
    @id, @workspace_id, @key_id, @member_id, @requested_model, @model, @provider, @upstream_id,
    @app, @end_user, @session_id, @streamed, @cancelled, @status, @error_type, @finish_reason,
    @native_finish_reason, @prompt_tokens, @completion_tokens, @reasoning_tokens, @cached_tokens,
    @cost_usd, @is_byok, @latency_ms, @ttft_ms, @attempts, @created_at
)
ON CONFLICT (id) DO NOTHING;

-- name: GenerationGetByID :one
SELECT * FROM generations WHERE id = @id AND workspace_id = @workspace_id;

-- name: GenerationUsageByKey :one
-- Spend of one key: lifetime, and since each period start (UTC), BYOK apart.
SELECT
    coalesce(sum(cost_usd) FILTER (WHERE NOT is_byok), 0)::numeric AS usage,
    coalesce(sum(cost_usd) FILTER (WHERE NOT is_byok AND created_at >= @day_start::timestamptz), 0)::numeric AS usage_daily,
    coalesce(sum(cost_usd) FILTER (WHERE NOT is_byok AND created_at >= @week_start::timestamptz), 0)::numeric AS usage_weekly,
    coalesce(sum(cost_usd) FILTER (WHERE NOT is_byok AND created_at >= @month_start::timestamptz), 0)::numeric AS usage_monthly,
    coalesce(sum(cost_usd) FILTER (WHERE is_byok), 0)::numeric AS byok_usage
FROM generations
WHERE key_id = @key_id;
