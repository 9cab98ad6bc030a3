-- Grid groups (issue 15): sets of an organisation's devices with a shared power limit, nested by
-- parent_id (sites inside feeders). The definition is a JSON document (voltplan_core::grid::GridGroup);
-- the columns hold what queries filter on and the joint planner's lease. Only outermost groups
-- (parent_id null) are planned: each with everything inside it.
CREATE TABLE grid_groups (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES organisations (id),
    parent_id     UUID,
    definition    JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ,
    next_plan_at  TIMESTAMPTZ,
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ,
    lease_epoch   BIGINT NOT NULL DEFAULT 0,
    -- The last joint plan's summary (JSON text), for the API.
    joint_plan    TEXT
);
CREATE INDEX grid_groups_org ON grid_groups (org_id, created_at);
CREATE INDEX grid_groups_due ON grid_groups (next_plan_at);

-- What the group's joint plan leaves each vehicle (JSON text: the outermost group, the windows,
-- the inputs it was made from), written by the group's planner and read by the vehicle's cycle.
ALTER TABLE electric_vehicles ADD COLUMN shared_root UUID;
ALTER TABLE electric_vehicles ADD COLUMN shared_limit TEXT;
