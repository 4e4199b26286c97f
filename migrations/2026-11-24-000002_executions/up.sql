-- Test cases, navigation trees, reference images, executions and their steps.

-- Test cases are versioned: every save of a name adds a version; executions pin the version they ran.
CREATE TABLE testcases (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    -- The YAML as uploaded, and the parsed document as stored JSON.
    source      TEXT NOT NULL,
    document    JSONB NOT NULL,
    created_by  UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);

-- Navigation trees are versioned per device model.
CREATE TABLE navigation_trees (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    document    JSONB NOT NULL,
    created_by  UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, model, version)
);

-- What navigation has learned about each edge, across tree versions (edges keep their ids).
CREATE TABLE nav_edge_stats (
    tenant_id        UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    model            TEXT NOT NULL,
    edge_id          TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    successes        BIGINT NOT NULL DEFAULT 0,
    mean_duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model, edge_id)
);

-- Reference images for image verifications; the bytes live in the object store.
CREATE TABLE reference_images (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    object_key  TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE executions (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_id    UUID NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    testcase_id  UUID NOT NULL REFERENCES testcases(id),
    -- queued → dispatched → running → passed | failed | error | cancelled | interrupted
    status       TEXT NOT NULL CHECK (status IN ('queued', 'dispatched', 'running', 'passed', 'failed', 'error', 'cancelled', 'interrupted')),
    reason       TEXT NOT NULL DEFAULT '',
    steps_total  INTEGER,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    created_by   UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    dispatched_at TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    -- Last sign of life from the host for this execution (dispatch, step, reconnect).
    heartbeat_at TIMESTAMPTZ
);
-- The exclusive device lease: at most one active execution per device.
CREATE UNIQUE INDEX executions_one_active_per_device ON executions (device_id) WHERE status IN ('dispatched', 'running');
CREATE INDEX executions_queue ON executions (device_id, created_at) WHERE status = 'queued';
CREATE INDEX executions_tenant_created ON executions (tenant_id, created_at DESC);

-- One row per step; (execution_id, idx) de-duplicates reports resent after a reconnect.
CREATE TABLE execution_steps (
    execution_id   UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    tenant_id      UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    verdict        TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'error', 'skipped')),
    reason         TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    duration_ms    DOUBLE PRECISION NOT NULL,
    screenshot_key TEXT,
    measurements   JSONB NOT NULL DEFAULT '{}',
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, idx)
);
