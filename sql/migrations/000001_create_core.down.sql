DROP TABLE generations;
DROP TABLE api_keys;
DROP TABLE members;
DROP TABLE workspaces;
