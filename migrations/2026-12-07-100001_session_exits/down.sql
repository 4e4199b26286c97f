DROP INDEX sessions_live_expiry;
CREATE INDEX sessions_running_expiry ON sessions (expires_at) WHERE status = 'running';
UPDATE sessions SET status = 'stopped', ended_at = COALESCE(ended_at, now()) WHERE status = 'exited';
ALTER TABLE sessions DROP COLUMN exit_code, DROP COLUMN oom_killed, DROP COLUMN exited_at,
    DROP COLUMN restarts;
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
    CHECK (status IN ('running', 'stopped', 'expired'));
