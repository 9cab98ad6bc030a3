-- Re-authentication sessions (POST …/electric-vehicles/{id}/auth_session). The driver's browser
-- opens /connect/{id}: the random id is the session's only secret. A session is open while
-- completed_at is NULL and expires_at is in the future; completing it records the outcome once.
-- Like every child table it carries org_id with a composite foreign key to its parent, which needs
-- (org_id, id) to be unique on electric_vehicles (it is: id alone is the primary key).
CREATE UNIQUE INDEX electric_vehicles_org_id ON electric_vehicles (org_id, id);

CREATE TABLE auth_sessions (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL,
    vehicle_id    BLOB NOT NULL,
    success_url   TEXT,
    cancel_url    TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    completed_at  TEXT,
    outcome       TEXT,
    FOREIGN KEY (org_id, vehicle_id) REFERENCES electric_vehicles (org_id, id),
    CHECK ((completed_at IS NULL) = (outcome IS NULL)),
    CHECK (outcome IS NULL OR outcome IN ('success', 'cancelled'))
);
CREATE INDEX auth_sessions_vehicle ON auth_sessions (org_id, vehicle_id, created_at);
