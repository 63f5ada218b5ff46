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
-- A key's spend rollups of the current periods (UTC), and its lifetime;
-- then, in the same snapshot, a row per id of @pending (records a replica
-- holds unwritten) that is written after all, so none counts twice.
SELECT ku.period, ku.usage, ku.byok_usage, ''::text AS written_id FROM key_usage ku
WHERE ku.key_id = @key_id::text AND (
    (ku.period = 'lifetime') OR
    (ku.period = 'daily' AND ku.period_start = @day_start::timestamptz) OR
    (ku.period = 'weekly' AND ku.period_start = @week_start::timestamptz) OR
    (ku.period = 'monthly' AND ku.period_start = @month_start::timestamptz))
UNION ALL
SELECT 'written', 0::numeric, 0::numeric, g.id FROM generations g WHERE g.id = ANY(@pending::text[]);

-- name: ReplicaHeartbeat :exec
INSERT INTO replicas (id) VALUES (@id)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: ReplicaDelete :exec
DELETE FROM replicas WHERE id = @id;

-- name: GenerationStartsInterrupt :execrows
-- Turns the starts of dead replicas (no heartbeat since @dead_before) into
-- records saying the request was interrupted: the id a client holds then
-- resolves. Their cost is unknown here; the budget sweep charges their
-- replica's leases in full.
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

-- name: GenerationList :many
-- A page of a workspace's generations, newest first, strictly after the
-- cursor (created_at, id); an empty filter matches everything.
SELECT * FROM generations
WHERE workspace_id = @workspace_id
  AND (@member_id::text = '' OR member_id = @member_id::text)
  AND (@model::text = '' OR requested_model = @model::text)
  AND (@provider::text = '' OR provider = @provider::text)
  AND (@key_id::text = '' OR key_id = @key_id::text)
  AND (@status::int = 0 OR status = @status::int)
  AND created_at >= @from_at::timestamptz
  AND created_at < @to_at::timestamptz
  AND (created_at, id) < (@cursor_at::timestamptz, @cursor_id::text)
ORDER BY created_at DESC, id DESC
LIMIT @page_size::int;

-- name: GenerationCopy :copyfrom
-- The fast path of a flush: its records in one COPY, in the transaction
-- that also adds them to the key usage rollups (KeyUsageAdd) and removes
-- their stream start markers (GenerationStartDelete), and to the analytics
-- aggregates (UsageHourlyAdd). A retried batch whose rows exist already
-- fails here on the primary key; it is written again without them
-- (GenerationExistingIDs).
INSERT INTO generations (
    id, workspace_id, key_id, member_id, requested_model, model, provider, upstream_id,
    app, end_user, session_id, streamed, cancelled, status, error_type, finish_reason,
    native_finish_reason, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens,
    cost_usd, is_byok, latency_ms, ttft_ms, attempts, created_at, usage_estimated, anomaly, routing, zdr,
    app_title, http_referer, app_categories, client_name, client_version, metadata, cache_write_tokens
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
    $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38
);

-- name: KeyUsageAdd :exec
-- Adds a flush's spend to the key usage rollups: its records summed per key
-- and UTC day by the caller, each sum spread over the four periods, upserted
-- in key order so that concurrent flushes lock rows in the same order.
WITH d AS (
    SELECT unnest(@key_id::text[]) AS key_id, unnest(@day::timestamptz[]) AS day,
           unnest(@usage::text[])::numeric AS usage, unnest(@byok_usage::text[])::numeric AS byok_usage
), spent AS (
    SELECT key_id, 'lifetime'::text AS period, timestamptz '1970-01-01 00:00:00+00' AS start,
           sum(usage) AS usage, sum(byok_usage) AS byok_usage
    FROM d GROUP BY 1, 3
    UNION ALL
    SELECT key_id, 'daily'::text AS period, day AS start, sum(usage) AS usage, sum(byok_usage) AS byok_usage
    FROM d GROUP BY 1, 3
    UNION ALL
    SELECT key_id, 'weekly'::text AS period, date_trunc('week', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start,
           sum(usage) AS usage, sum(byok_usage) AS byok_usage
    FROM d GROUP BY 1, 3
    UNION ALL
    SELECT key_id, 'monthly'::text AS period, date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start,
           sum(usage) AS usage, sum(byok_usage) AS byok_usage
    FROM d GROUP BY 1, 3
)
INSERT INTO key_usage AS u (key_id, period, period_start, usage, byok_usage)
SELECT key_id, period, start, usage, byok_usage FROM spent ORDER BY 1, 2, 3
ON CONFLICT (key_id, period, period_start) DO UPDATE
    SET usage = u.usage + EXCLUDED.usage, byok_usage = u.byok_usage + EXCLUDED.byok_usage;

-- name: GenerationStartDelete :exec
-- Removes the start markers of records now written.
DELETE FROM generation_starts WHERE id = ANY(@id::text[]);

-- name: GenerationDeleteOlder :execrows
-- Retention: deletes up to @batch records created before @before. The id
-- (time-ordered) bounds the scan to the primary key's oldest entries;
-- created_at decides. Rows another replica is deleting are skipped.
DELETE FROM generations WHERE id IN (
    SELECT g.id FROM generations g
    WHERE g.id < @before_id AND g.created_at < @before
    ORDER BY g.id LIMIT @batch::int
    FOR UPDATE SKIP LOCKED);
