-- A session whose app ends by itself (it exited, or was killed for memory) becomes `exited`, with
-- the exit code, whether it ran out of memory and when; its container stays until the session
-- expires, so it can be restarted (`restarts` counts them) and its output read.
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
    CHECK (status IN ('running', 'exited', 'stopped', 'expired'));
ALTER TABLE sessions
    ADD COLUMN exit_code INTEGER,
    ADD COLUMN oom_killed BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN exited_at TIMESTAMPTZ,
    ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
-- The sweeper's scan: sessions whose containers still exist.
DROP INDEX sessions_running_expiry;
CREATE INDEX sessions_live_expiry ON sessions (expires_at) WHERE status IN ('running', 'exited');
