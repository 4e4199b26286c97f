ALTER TABLE devices DROP COLUMN health, DROP COLUMN health_reason, DROP COLUMN health_checked_at;
