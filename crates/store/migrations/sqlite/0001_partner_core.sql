-- Organisations, API clients, tokens, users, buildings, electric vehicles.
-- Columns hold what queries filter, join or index on; the rest of an object is a JSON document.
-- Child tables carry org_id with a composite foreign key, so a wrong join cannot cross tenants.

CREATE TABLE organisations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_clients (
    id           TEXT PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES organisations (id),
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX api_clients_org ON api_clients (org_id);

CREATE TABLE access_tokens (
    token_hash  BLOB PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES api_clients (id),
    org_id      BLOB NOT NULL REFERENCES organisations (id),
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE users (
    id                BLOB PRIMARY KEY,
    org_id            BLOB NOT NULL REFERENCES organisations (id),
    email             TEXT NOT NULL,
    role              TEXT NOT NULL,
    external_user_id  TEXT,
    profile           TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX users_email_unique ON users (org_id, lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_org ON users (org_id, created_at);

CREATE TABLE buildings (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    details     TEXT NOT NULL,
    latitude    REAL,
    longitude   REAL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);
CREATE INDEX buildings_user ON buildings (org_id, user_id, created_at);

CREATE TABLE electric_vehicles (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    building_id  BLOB,
    price_zone   TEXT NOT NULL,
    settings     TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, building_id) REFERENCES buildings (org_id, id)
);
CREATE INDEX electric_vehicles_user ON electric_vehicles (org_id, user_id, created_at);
