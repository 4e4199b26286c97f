-- Repo sandboxes: builds (a repository built into an image by a worker), their logs, and the
-- session (a running container) a successful build leaves. Plus a target exchange per outbox row,
-- so build jobs and session control go through the outbox like events do.

CREATE TABLE builds (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- Validated by core's RepoUrl, which refuses credentials: never a secret.
    repo_url        TEXT NOT NULL,
    git_ref         TEXT,
    subdir          TEXT,
    -- queued → cloning → detecting → building → starting → running,
    -- ending failed | expired | cancelled | stopped
    stage           TEXT NOT NULL CHECK (stage IN ('queued', 'cloning', 'detecting', 'building', 'starting',
                                                   'running', 'failed', 'expired', 'cancelled', 'stopped')),
    stack           TEXT,
    dockerfile      TEXT,
    own_dockerfile  BOOLEAN,
    image           TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    created_by      UUID,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The first stage a worker reported.
    started_at      TIMESTAMPTZ,
    -- The final stage.
    finished_at     TIMESTAMPTZ,
    -- The worker attempt whose updates are current (a redelivered job starts a new one).
    attempt         UUID
);
CREATE INDEX builds_tenant_created ON builds (tenant_id, created_at DESC);

-- Build output. A line is identified by its attempt and number, so a resent batch is stored once;
-- `seq` is the display order (and the SSE event id).
CREATE TABLE build_logs (
    build_id  UUID NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    attempt   UUID NOT NULL,
    line_no   BIGINT NOT NULL,
    seq       BIGSERIAL NOT NULL,
    line      TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (build_id, attempt, line_no)
);
CREATE INDEX build_logs_build_seq ON build_logs (build_id, seq);

-- One session per build (its id is the build's). Workers remove the container on a Stop message,
-- when it is missing from a Live snapshot, or at hard_expires_at whatever happens.
CREATE TABLE sessions (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    build_id         UUID NOT NULL UNIQUE REFERENCES builds(id) ON DELETE CASCADE,
    container_id     TEXT NOT NULL,
    network          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'expired')),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    hard_expires_at  TIMESTAMPTZ NOT NULL,
    ended_at         TIMESTAMPTZ,
    end_reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_tenant_created ON sessions (tenant_id, created_at DESC);
-- The sweeper's scan.
CREATE INDEX sessions_running_expiry ON sessions (expires_at) WHERE status = 'running';

-- '' is the events exchange; anything else is published to that exchange with the routing key as is.
ALTER TABLE outbox_events ADD COLUMN exchange TEXT NOT NULL DEFAULT '';
