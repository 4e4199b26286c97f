DROP INDEX api_keys_one_active_token_per_host;
ALTER TABLE api_keys DROP COLUMN host_name;
