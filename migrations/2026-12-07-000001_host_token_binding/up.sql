-- A host enrollment token is bound to one host name: given at creation, or the name of the first
-- hello it opens the host link with. One active token per host name in a tenant, so a token
-- cannot take over the identity of a host enrolled with another.
ALTER TABLE api_keys ADD COLUMN host_name TEXT;
CREATE UNIQUE INDEX api_keys_one_active_token_per_host
    ON api_keys (tenant_id, host_name)
    WHERE revoked_at IS NULL AND host_name IS NOT NULL;
