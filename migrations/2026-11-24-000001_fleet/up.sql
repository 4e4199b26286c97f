-- Tenants, API keys, and the fleet (hosts and devices), plus the event outbox.
-- Every table carries tenant_id; every query filters by it.

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'host')),
    -- First characters of the key, shown in listings so people can tell keys apart.
    prefix      TEXT NOT NULL,
    -- SHA-256 of the whole key, hex. Keys carry 256 random bits, so a fast hash is enough.
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE hosts (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('online', 'offline', 'error')),
    agent_version TEXT NOT NULL,
    info          JSONB NOT NULL DEFAULT '{}',
    stats         JSONB,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    connected_at  TIMESTAMPTZ,
    -- The current stream's id; updates from an older stream of the same host are ignored.
    connection_id UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX hosts_tenant_status ON hosts (tenant_id, status);

CREATE TABLE devices (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    host_id       UUID NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    -- The device's id inside its host (from the host's config).
    device_key    TEXT NOT NULL,
    name          TEXT NOT NULL,
    model         TEXT NOT NULL,
    driver        TEXT NOT NULL,
    capabilities  TEXT[] NOT NULL DEFAULT '{}',
    tags          TEXT[] NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL CHECK (status IN ('online', 'offline', 'error')),
    status_detail TEXT NOT NULL DEFAULT '',
    -- False once the host stops declaring the device; kept for history.
    present       BOOLEAN NOT NULL DEFAULT true,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (host_id, device_key)
);
CREATE INDEX devices_tenant_status ON devices (tenant_id, status);
CREATE INDEX devices_tenant_model ON devices (tenant_id, model);
CREATE INDEX devices_tags ON devices USING GIN (tags);

-- Transactional outbox: fleet changes are written here in the same transaction as the change and
-- published to RabbitMQ (with publisher confirms) by a background task, so no event is lost when the
-- broker is down.
CREATE TABLE outbox_events (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    routing_key  TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
