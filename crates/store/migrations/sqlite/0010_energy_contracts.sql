-- Energy contracts (Podero §3.3) with Voltplan's tariff extension (grid fees by time window, VAT,
-- spot markup). The contract is a JSON document (voltplan_core::tariff::EnergyContract); the columns
-- hold what the worker looks contracts up by. No building: the contract covers all the user's
-- buildings.
CREATE TABLE energy_contracts (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    building_id  BLOB,
    contract     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, building_id) REFERENCES buildings (org_id, id)
);
CREATE INDEX energy_contracts_user ON energy_contracts (org_id, user_id, created_at);
