-- Analytics aggregates, maintained in the transaction that writes the
-- generation records (never recomputed from them): per workspace and UTC
-- hour, per app, model, provider, key and member; and per governing
-- guardrail. Latency and time to first token are sparse histograms of fixed
-- log-scale buckets (bucket i holds values up to 2^(i/4) ms), as jsonb
-- objects {"<bucket>": count}, merged by adding counts.
CREATE FUNCTION perpetuo_hist_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
    FROM (SELECT k, sum(v::bigint) AS n
          FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) AS e(k, v)
          GROUP BY k) AS s
$$;

CREATE TABLE usage_hourly (
    workspace_id      text NOT NULL,
    hour              timestamptz NOT NULL,
    app_id            text NOT NULL,  -- '': unattributed
    model             text NOT NULL,  -- the served model, else the requested one
    provider          text NOT NULL,  -- '': none served
    key_id            text NOT NULL,
    member_id         text NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    reasoning_tokens  bigint NOT NULL,
    cost_usd          numeric NOT NULL,
    byok_cost_usd     numeric NOT NULL,
    latency_hist      jsonb NOT NULL,
    ttft_hist         jsonb NOT NULL,
    PRIMARY KEY (workspace_id, hour, app_id, model, provider, key_id, member_id)
);

CREATE TABLE usage_hourly_guardrails (
    workspace_id      text NOT NULL,
    hour              timestamptz NOT NULL,
    guardrail_id      text NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    reasoning_tokens  bigint NOT NULL,
    cost_usd          numeric NOT NULL,
    byok_cost_usd     numeric NOT NULL,
    latency_hist      jsonb NOT NULL,
    ttft_hist         jsonb NOT NULL,
    PRIMARY KEY (workspace_id, hour, guardrail_id)
);
