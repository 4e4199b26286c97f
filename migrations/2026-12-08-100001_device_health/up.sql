-- A device's health as its host last checked it: healthy, degraded or unhealthy with the reason
-- (the failing parts), and when. NULL until the first check arrives.
ALTER TABLE devices
    ADD COLUMN health TEXT CHECK (health IN ('healthy', 'degraded', 'unhealthy')),
    ADD COLUMN health_reason TEXT NOT NULL DEFAULT '',
    ADD COLUMN health_checked_at TIMESTAMPTZ;
