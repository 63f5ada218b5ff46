-- name: UsageHourlyAdd :exec
-- Adds a flush's records, summed per hour and dimensions in Go, to the
-- analytics aggregates (rows sorted by key, so concurrent flushes lock them
-- in one order). Histograms travel as jsonb text, one per row.
INSERT INTO usage_hourly AS u (workspace_id, hour, app_id, model, provider, key_id, member_id, requests, errors,
    prompt_tokens, completion_tokens, reasoning_tokens, cost_usd, byok_cost_usd, latency_hist, ttft_hist)
SELECT workspace_id, hour, app_id, model, provider, key_id, member_id, requests, errors, prompt_tokens,
       completion_tokens, reasoning_tokens, cost_usd::numeric, byok_cost_usd::numeric, latency_hist::jsonb, ttft_hist::jsonb
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
    latency_hist = perpetuo_hist_add(u.latency_hist, EXCLUDED.latency_hist),
    ttft_hist = perpetuo_hist_add(u.ttft_hist, EXCLUDED.ttft_hist);

-- name: UsageGuardrailAdd :exec
-- As UsageHourlyAdd, per governing guardrail.
INSERT INTO usage_hourly_guardrails AS u (workspace_id, hour, guardrail_id, requests, errors, prompt_tokens,
    completion_tokens, reasoning_tokens, cost_usd, byok_cost_usd, latency_hist, ttft_hist)
SELECT workspace_id, hour, guardrail_id, requests, errors, prompt_tokens, completion_tokens, reasoning_tokens,
       cost_usd::numeric, byok_cost_usd::numeric, latency_hist::jsonb, ttft_hist::jsonb
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
    latency_hist = perpetuo_hist_add(u.latency_hist, EXCLUDED.latency_hist),
    ttft_hist = perpetuo_hist_add(u.ttft_hist, EXCLUDED.ttft_hist);

-- name: UsageSums :many
-- A report's sums, grouped in the database by the report's dimension, its
-- time bucket and the model (for the models each group used), over the
-- aggregate rows of [from, to) that pass the filters (NULL: none; '' is
-- unattributed or unserved).
SELECT (CASE @dimension::text WHEN 'apps' THEN app_id WHEN 'models' THEN model WHEN 'providers' THEN provider
            WHEN 'keys' THEN key_id WHEN 'members' THEN member_id ELSE '' END)::text AS id,
       (CASE WHEN @granularity::text = '' THEN timestamptz '1970-01-01 00:00:00+00'
            ELSE date_trunc(@granularity::text, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END)::timestamptz AS bucket,
       model, provider,
       sum(requests)::bigint AS requests, sum(errors)::bigint AS errors, sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
       sum(cost_usd)::numeric AS cost_usd, sum(byok_cost_usd)::numeric AS byok_cost_usd
FROM usage_hourly
WHERE workspace_id = @workspace_id AND hour >= @from_hour AND hour < @to_hour
  AND (sqlc.narg('app_id')::text IS NULL OR app_id = sqlc.narg('app_id'))
  AND (sqlc.narg('model')::text IS NULL OR model = sqlc.narg('model'))
  AND (sqlc.narg('provider')::text IS NULL OR provider = sqlc.narg('provider'))
  AND (sqlc.narg('key_id')::text IS NULL OR key_id = sqlc.narg('key_id'))
  AND (sqlc.narg('member_id')::text IS NULL OR member_id = sqlc.narg('member_id'))
GROUP BY 1, 2, 3, 4
ORDER BY 2;

-- name: UsageHistograms :many
-- The same rows' histograms, summed per group, bucket and histogram bucket
-- (kind 'l' latency, 't' time to first token).
SELECT (CASE @dimension::text WHEN 'apps' THEN app_id WHEN 'models' THEN model WHEN 'providers' THEN provider
            WHEN 'keys' THEN key_id WHEN 'members' THEN member_id ELSE '' END)::text AS id,
       (CASE WHEN @granularity::text = '' THEN timestamptz '1970-01-01 00:00:00+00'
            ELSE date_trunc(@granularity::text, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END)::timestamptz AS bucket,
       h.kind::text AS kind, h.b::int AS b, sum(h.n)::bigint AS n
FROM usage_hourly,
     LATERAL (SELECT 'l' AS kind, key::int AS b, value::bigint AS n FROM jsonb_each_text(latency_hist)
              UNION ALL SELECT 't', key::int, value::bigint FROM jsonb_each_text(ttft_hist)) AS h
WHERE workspace_id = @workspace_id AND hour >= @from_hour AND hour < @to_hour
  AND (sqlc.narg('app_id')::text IS NULL OR app_id = sqlc.narg('app_id'))
  AND (sqlc.narg('model')::text IS NULL OR model = sqlc.narg('model'))
  AND (sqlc.narg('provider')::text IS NULL OR provider = sqlc.narg('provider'))
  AND (sqlc.narg('key_id')::text IS NULL OR key_id = sqlc.narg('key_id'))
  AND (sqlc.narg('member_id')::text IS NULL OR member_id = sqlc.narg('member_id'))
GROUP BY 1, 2, 3, 4;

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
