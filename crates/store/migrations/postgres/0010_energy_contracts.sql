-- Energy contracts (Podero §3.3) with Voltplan's tariff extension (grid fees by time window, VAT,
-- spot markup). The contract is a JSON document (voltplan_core::tariff::EnergyContract); the columns
-- hold what the worker looks contracts up by. No building: the contract covers all the user's
-- buildings.
CREATE TABLE energy_contracts (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL,
    user_id      UUID NOT NULL,
    building_id  UUID,
    contract     JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, building_id) REFERENCES buildings (org_id, id)
);
CREATE INDEX energy_contracts_user ON energy_contracts (org_id, user_id, created_at);
