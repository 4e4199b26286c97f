ALTER TABLE outbox_events DROP COLUMN exchange;
DROP TABLE sessions;
DROP TABLE build_logs;
DROP TABLE builds;
