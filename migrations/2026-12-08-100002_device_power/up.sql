-- A device's last known mains power state (read back from the switch after every power action;
-- NULL: unknown), when it was read, and the last switch: when and by whom (a user's key or an
-- execution, with its name at the time).
ALTER TABLE devices
    ADD COLUMN power_state TEXT CHECK (power_state IN ('on', 'off')),
    ADD COLUMN power_read_at TIMESTAMPTZ,
    ADD COLUMN power_switched_at TIMESTAMPTZ,
    ADD COLUMN power_switched_by_kind TEXT CHECK (power_switched_by_kind IN ('user', 'execution')),
    ADD COLUMN power_switched_by_id UUID,
    ADD COLUMN power_switched_by_name TEXT NOT NULL DEFAULT '';
