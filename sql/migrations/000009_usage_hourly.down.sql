DROP TABLE usage_hourly_guardrails;
DROP TABLE usage_hourly;
DROP FUNCTION perpetuo_hist_add(jsonb, jsonb);
