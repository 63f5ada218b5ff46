-- name: UsageHourlyAdd :exec
-- Adds a flush's records, summed per hour and dimensions in Go, to the
-- analytics aggregates (rows sorted by key, so concurrent flushes lock them
-- in one order). Histograms travel as array literals, one per row.
INSERT INTO usage_hourly AS u (workspace_id, hour, app_id, model, provider, key_id, member_id, requests, errors,
    prompt_tokens, completion_tokens, reasoning_tokens, cost_usd, byok_cost_usd, latency_hist, ttft_hist)
SELECT workspace_id, hour, app_id, model, provider, key_id, member_id, requests, errors, prompt_tokens,
       completion_tokens, reasoning_tokens, cost_usd::numeric, byok_cost_usd::numeric, latency_hist::bigint[], ttft_hist::bigint[]
FROM (SELECT unnest(@workspace_id::text[]) AS workspace_id, unnest(@hour::timestamptz[]) AS hour,
             unnest(@app_id::text[]) AS app_id, unnest(@model::text[]) AS model, unnest(@provider::text[]) AS provider,
             unnest(@key_id::text[]) AS key_id, unnest(@member_id::text[]) AS member_id,
             unnest(@requests::bigint[]) AS requests, unnest(@errors::bigint[]) AS errors,
             unnest(@prompt_tokens::bigint[]) AS prompt_tokens, unnest(@completion_tokens::bigint[]) AS completion_tokens,
             unnest(@reasoning_tokens::bigint[]) AS reasoning_tokens, unnest(@cost_usd::text[]) AS cost_usd,
             unnest(@byok_cost_usd::text[]) AS byok_cost_usd, unnest(@latency_hist::text[]) AS latency_hist,
             unnest(@ttft_hist::text[]) AS ttft_hist) r
ON CONFLICT (workspace_id, hour, app_id, model, provider, key_id, member_id) DO UPDATE SET
    requests = u.requests + EXCLUDED.requests,
    errors = u.errors + EXCLUDED.errors,
    prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
    reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost_usd = u.cost_usd + EXCLUDED.cost_usd,
    byok_cost_usd = u.byok_cost_usd + EXCLUDED.byok_cost_usd,
    latency_hist = ARRAY(SELECT u.latency_hist[i] + EXCLUDED.latency_hist[i] FROM generate_series(1, cardinality(u.latency_hist)) AS i ORDER BY i),
    ttft_hist = ARRAY(SELECT u.ttft_hist[i] + EXCLUDED.ttft_hist[i] FROM generate_series(1, cardinality(u.ttft_hist)) AS i ORDER BY i);

-- name: UsageGuardrailAdd :exec
-- As UsageHourlyAdd, per governing guardrail.
INSERT INTO usage_hourly_guardrails AS u (workspace_id, hour, guardrail_id, requests, errors, prompt_tokens,
    completion_tokens, reasoning_tokens, cost_usd, byok_cost_usd, latency_hist, ttft_hist)
SELECT workspace_id, hour, guardrail_id, requests, errors, prompt_tokens, completion_tokens, reasoning_tokens,
       cost_usd::numeric, byok_cost_usd::numeric, latency_hist::bigint[], ttft_hist::bigint[]
FROM (SELECT unnest(@workspace_id::text[]) AS workspace_id, unnest(@hour::timestamptz[]) AS hour,
             unnest(@guardrail_id::text[]) AS guardrail_id, unnest(@requests::bigint[]) AS requests,
             unnest(@errors::bigint[]) AS errors, unnest(@prompt_tokens::bigint[]) AS prompt_tokens,
             unnest(@completion_tokens::bigint[]) AS completion_tokens, unnest(@reasoning_tokens::bigint[]) AS reasoning_tokens,
             unnest(@cost_usd::text[]) AS cost_usd, unnest(@byok_cost_usd::text[]) AS byok_cost_usd,
             unnest(@latency_hist::text[]) AS latency_hist, unnest(@ttft_hist::text[]) AS ttft_hist) r
ON CONFLICT (workspace_id, hour, guardrail_id) DO UPDATE SET
    requests = u.requests + EXCLUDED.requests,
    errors = u.errors + EXCLUDED.errors,
    prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
    reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost_usd = u.cost_usd + EXCLUDED.cost_usd,
    byok_cost_usd = u.byok_cost_usd + EXCLUDED.byok_cost_usd,
    latency_hist = ARRAY(SELECT u.latency_hist[i] + EXCLUDED.latency_hist[i] FROM generate_series(1, cardinality(u.latency_hist)) AS i ORDER BY i),
    ttft_hist = ARRAY(SELECT u.ttft_hist[i] + EXCLUDED.ttft_hist[i] FROM generate_series(1, cardinality(u.ttft_hist)) AS i ORDER BY i);

-- name: UsageHourlyRange :many
-- The aggregate rows of a workspace in [from, to), for analytics and
-- activity; the caller groups and merges them.
SELECT hour, app_id, model, provider, key_id, member_id, requests, errors, prompt_tokens, completion_tokens,
       reasoning_tokens, cost_usd, byok_cost_usd, latency_hist, ttft_hist
FROM usage_hourly
WHERE workspace_id = @workspace_id AND hour >= @from_hour AND hour < @to_hour
  AND (sqlc.narg('member_id')::text IS NULL OR member_id = sqlc.narg('member_id'))
ORDER BY hour;

-- name: UsageGuardrailRange :many
SELECT hour, guardrail_id, requests, errors, prompt_tokens, completion_tokens, reasoning_tokens, cost_usd,
       byok_cost_usd, latency_hist, ttft_hist
FROM usage_hourly_guardrails
WHERE workspace_id = @workspace_id AND hour >= @from_hour AND hour < @to_hour
ORDER BY hour;

-- name: GenerationExistingIDs :many
-- Which of a batch's records are written already (a batch retried after a
-- commit whose answer was lost).
SELECT id FROM generations WHERE id = ANY(@ids::text[]);
