-- Interactive reservations: a person books a device for a time box; the page that holds it
-- keeps it alive. The reservation ends at the first of `ends_at` (the time box) and
-- `alive_until` (pushed forward by each keep-alive), or when released. While it lasts, only
-- its key may control the device and only its key's executions are dispatched to it.
CREATE TABLE device_reservations (
    device_id   UUID PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id      UUID NOT NULL,
    holder      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ends_at     TIMESTAMPTZ NOT NULL,
    alive_until TIMESTAMPTZ NOT NULL
);
CREATE INDEX device_reservations_tenant ON device_reservations (tenant_id);
