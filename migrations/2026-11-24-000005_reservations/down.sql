DROP TABLE device_reservations;
