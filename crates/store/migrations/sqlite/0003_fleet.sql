-- The live loop: leases on vehicles, the worker's own state, plans, charging sessions, commands and
-- readings. A vehicle is due when next_cycle_at is NULL (as soon as possible: new, or its settings
-- changed) or past. A lease (lease_owner, lease_until) lets one worker at a time cycle a vehicle;
-- lease_epoch grows with every claim and fences the finishing write and every command.
ALTER TABLE electric_vehicles ADD COLUMN next_cycle_at TEXT;
ALTER TABLE electric_vehicles ADD COLUMN lease_owner TEXT;
ALTER TABLE electric_vehicles ADD COLUMN lease_until TEXT;
ALTER TABLE electric_vehicles ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE electric_vehicles ADD COLUMN runtime TEXT;
ALTER TABLE electric_vehicles ADD COLUMN plan TEXT;
CREATE INDEX electric_vehicles_due ON electric_vehicles (next_cycle_at) WHERE deleted_at IS NULL;
CREATE INDEX electric_vehicles_lease ON electric_vehicles (lease_owner, lease_until);

CREATE TABLE charging_sessions (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL,
    vehicle_id    BLOB NOT NULL REFERENCES electric_vehicles (id),
    plug_in_time  TEXT NOT NULL,
    unplug_time   TEXT,
    data          TEXT NOT NULL
);
CREATE INDEX charging_sessions_vehicle ON charging_sessions (org_id, vehicle_id, plug_in_time);

CREATE TABLE vehicle_commands (
    idempotency_key  TEXT PRIMARY KEY,
    org_id           BLOB NOT NULL,
    vehicle_id       BLOB NOT NULL,
    command          TEXT NOT NULL,
    worker_id        TEXT NOT NULL,
    lease_epoch      INTEGER NOT NULL,
    issued_at        TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    detail           TEXT
);
CREATE INDEX vehicle_commands_vehicle ON vehicle_commands (vehicle_id, issued_at);

CREATE TABLE vehicle_readings (
    vehicle_id     BLOB NOT NULL,
    org_id         BLOB NOT NULL,
    at             TEXT NOT NULL,
    battery_level  REAL,
    is_plugged_in  INTEGER,
    is_charging    INTEGER,
    is_at_home     INTEGER,
    power_w        REAL,
    energy_kwh     REAL,
    price_eur_mwh  REAL,
    PRIMARY KEY (vehicle_id, at)
) WITHOUT ROWID;
