-- The live loop: leases on vehicles, the worker's own state, plans, charging sessions, commands and
-- readings. A vehicle is due when next_cycle_at is NULL (as soon as possible: new, or its settings
-- changed) or past. A lease (lease_owner, lease_until) lets one worker at a time cycle a vehicle;
-- lease_epoch grows with every claim and fences the finishing write and every command.
ALTER TABLE electric_vehicles ADD COLUMN next_cycle_at TIMESTAMPTZ;
ALTER TABLE electric_vehicles ADD COLUMN lease_owner TEXT;
ALTER TABLE electric_vehicles ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE electric_vehicles ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE electric_vehicles ADD COLUMN runtime JSONB;
ALTER TABLE electric_vehicles ADD COLUMN plan JSONB;
CREATE INDEX electric_vehicles_due ON electric_vehicles (next_cycle_at) WHERE deleted_at IS NULL;
CREATE INDEX electric_vehicles_lease ON electric_vehicles (lease_owner, lease_until);

CREATE TABLE charging_sessions (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL,
    vehicle_id    UUID NOT NULL REFERENCES electric_vehicles (id),
    plug_in_time  TIMESTAMPTZ NOT NULL,
    unplug_time   TIMESTAMPTZ,
    data          JSONB NOT NULL
);
CREATE INDEX charging_sessions_vehicle ON charging_sessions (org_id, vehicle_id, plug_in_time);

CREATE TABLE vehicle_commands (
    idempotency_key  TEXT PRIMARY KEY,
    org_id           UUID NOT NULL,
    vehicle_id       UUID NOT NULL,
    command          TEXT NOT NULL,
    worker_id        TEXT NOT NULL,
    lease_epoch      BIGINT NOT NULL,
    issued_at        TIMESTAMPTZ NOT NULL,
    outcome          TEXT NOT NULL,
    detail           TEXT
);
CREATE INDEX vehicle_commands_vehicle ON vehicle_commands (vehicle_id, issued_at);

CREATE TABLE vehicle_readings (
    vehicle_id     UUID NOT NULL,
    org_id         UUID NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    battery_level  DOUBLE PRECISION,
    is_plugged_in  BOOLEAN,
    is_charging    BOOLEAN,
    is_at_home     BOOLEAN,
    power_w        DOUBLE PRECISION,
    energy_kwh     DOUBLE PRECISION,
    price_eur_mwh  DOUBLE PRECISION,
    PRIMARY KEY (vehicle_id, at)
);
