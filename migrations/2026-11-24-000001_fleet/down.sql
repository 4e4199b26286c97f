DROP TABLE outbox_events;
DROP TABLE devices;
DROP TABLE hosts;
DROP TABLE api_keys;
DROP TABLE tenants;
