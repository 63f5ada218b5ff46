DROP TABLE usage_hourly_guardrails;
DROP TABLE usage_hourly;
