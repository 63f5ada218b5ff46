ALTER TABLE workspaces ALTER COLUMN use_operator_credentials SET DEFAULT true;
ALTER TABLE api_keys DROP COLUMN operator;
DROP TABLE key_usage;
ALTER TABLE generations DROP COLUMN anomaly, DROP COLUMN usage_estimated;
DROP TABLE generation_starts;
ALTER TABLE spend_holds DROP COLUMN streamed, DROP COLUMN requested_model, DROP COLUMN replica_id, DROP COLUMN generation_id;
DROP TABLE replicas;
