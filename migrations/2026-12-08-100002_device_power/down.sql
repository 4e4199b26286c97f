ALTER TABLE devices DROP COLUMN power_state, DROP COLUMN power_read_at,
    DROP COLUMN power_switched_at, DROP COLUMN power_switched_by_kind,
    DROP COLUMN power_switched_by_id, DROP COLUMN power_switched_by_name;
