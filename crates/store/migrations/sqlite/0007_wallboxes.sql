-- Wallboxes: chargers that connect to Voltplan's OCPP central system (`/ocpp/{charge_point_id}`).
-- Like an EV, a wallbox has the partner's settings (JSON text), the worker's state, runtime and plan
-- (JSON text, rewritten every cycle) and lease columns for the live loop. A third writer, the
-- central system, keeps its own document `charger` (boot data, connector status, meter, the
-- replica holding the WebSocket), so none of the three overwrites another's fields.
CREATE TABLE wallboxes (
    id                  BLOB PRIMARY KEY,
    org_id              BLOB NOT NULL,
    user_id             BLOB NOT NULL,
    building_id         BLOB,
    price_zone          TEXT NOT NULL,
    settings            TEXT NOT NULL,
    state               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deleted_at          TEXT,
    -- The OCPP identity the installer types in; the URL path has no organisation, so it is
    -- unique across the installation among live wallboxes.
    charge_point_id     TEXT NOT NULL,
    -- Argon2id PHC string of the charger's Basic-auth password (Security Profile 1/2).
    ocpp_password_hash  TEXT NOT NULL,
    charger             TEXT,
    -- Bumped by every WebSocket that opens for the charger; the central system's writes to
    -- `charger` are fenced by it, so a replica whose connection was superseded writes nothing.
    ocpp_epoch          INTEGER NOT NULL DEFAULT 0,
    next_cycle_at       TEXT,
    lease_owner         TEXT,
    lease_until         TEXT,
    lease_epoch         INTEGER NOT NULL DEFAULT 0,
    runtime             TEXT,
    plan                TEXT,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, building_id) REFERENCES buildings (org_id, id)
);
CREATE INDEX wallboxes_user ON wallboxes (org_id, user_id, created_at);
CREATE UNIQUE INDEX wallboxes_charge_point ON wallboxes (charge_point_id) WHERE deleted_at IS NULL;
CREATE INDEX wallboxes_due ON wallboxes (next_cycle_at) WHERE deleted_at IS NULL;
CREATE INDEX wallboxes_lease ON wallboxes (lease_owner, lease_until);

-- Sessions as the partner reads them (`…/wallboxes/{id}/sessions`), as for EVs.
CREATE TABLE wallbox_sessions (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL,
    wallbox_id    BLOB NOT NULL,
    plug_in_time  TEXT NOT NULL,
    unplug_time   TEXT,
    data          TEXT NOT NULL,
    FOREIGN KEY (org_id, wallbox_id) REFERENCES wallboxes (org_id, id)
);
CREATE INDEX wallbox_sessions_wallbox ON wallbox_sessions (org_id, wallbox_id, plug_in_time);

-- The worker's per-cycle row for `…/wallboxes/{id}/data`, as vehicle_readings.
CREATE TABLE wallbox_readings (
    wallbox_id     BLOB NOT NULL,
    org_id         BLOB NOT NULL,
    at             TEXT NOT NULL,
    battery_level  REAL,
    is_plugged_in  INTEGER,
    is_charging    INTEGER,
    power_w        REAL,
    energy_kwh     REAL,
    price_eur_mwh  REAL,
    PRIMARY KEY (wallbox_id, at)
) WITHOUT ROWID;

-- OCPP transactions as the charger reported them. `id` is the transactionId handed to the
-- charger. A charger that resends StartTransaction after a lost answer gets the same id back:
-- (wallbox, connector, start timestamp) identifies a transaction.
CREATE TABLE ocpp_transactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          BLOB NOT NULL,
    wallbox_id      BLOB NOT NULL,
    connector_id    INTEGER NOT NULL,
    id_tag          TEXT NOT NULL,
    meter_start_wh  INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    meter_stop_wh   INTEGER,
    stopped_at      TEXT,
    stop_reason     TEXT,
    UNIQUE (wallbox_id, connector_id, started_at),
    FOREIGN KEY (org_id, wallbox_id) REFERENCES wallboxes (org_id, id)
);

-- Meter samples; a resent MeterValues adds nothing (same wallbox, connector, instant, measurand).
CREATE TABLE ocpp_meter_values (
    wallbox_id      BLOB NOT NULL,
    org_id          BLOB NOT NULL,
    connector_id    INTEGER NOT NULL,
    at              TEXT NOT NULL,
    measurand       TEXT NOT NULL,
    phase           TEXT NOT NULL DEFAULT '',
    transaction_id  INTEGER,
    value           REAL NOT NULL,
    unit            TEXT NOT NULL,
    PRIMARY KEY (wallbox_id, connector_id, at, measurand, phase)
);

-- Calls from Voltplan to a charger. The worker (any process) inserts them; the replica holding
-- the charger's WebSocket sends them and records the answer. The key is the worker's
-- idempotency key (or a random one for an API-triggered call), so a worker that takes over a
-- lease re-derives it and queues nothing twice.
CREATE TABLE ocpp_commands (
    id            TEXT PRIMARY KEY,
    org_id        BLOB NOT NULL,
    wallbox_id    BLOB NOT NULL,
    action        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    -- queued → sent → accepted | rejected | failed; queued → expired
    status        TEXT NOT NULL,
    sent_by       TEXT,
    sent_at       TEXT,
    answered_at   TEXT,
    response      TEXT,
    FOREIGN KEY (org_id, wallbox_id) REFERENCES wallboxes (org_id, id)
);
CREATE INDEX ocpp_commands_queued ON ocpp_commands (wallbox_id, created_at) WHERE status = 'queued';
