-- Onboarding and real vehicle clouds (issue 13).
--
-- onboarding_sessions: POST /device-onboarding (Podero §3.9) and the re-link sessions a cue's
-- /resolve starts. The driver's browser opens /connect/onboarding/{id}: the random id is the
-- page's secret. status walks pending → authorizing (sent to the cloud's login) → choosing (the
-- account's cars are listed) → completed, or ends cancelled / failed. oauth_state_hash is the
-- SHA-256 of the OAuth `state` handed to the cloud: the callback finds the session by it, once.
-- candidates: the cars the linked account shared (the cloud's JSON), for the choosing step.
-- object_ids: the devices created (or re-linked), a JSON array.
CREATE TABLE onboarding_sessions (
    id                  UUID PRIMARY KEY,
    org_id              UUID NOT NULL,
    user_id             UUID NOT NULL,
    building_id         UUID,
    relink_vehicle_id   UUID,
    cue_id              UUID,
    options             JSONB NOT NULL,
    success_url         TEXT NOT NULL,
    cancel_url          TEXT NOT NULL,
    status              TEXT NOT NULL,
    cloud_service       UUID,
    oauth_state_hash    BYTEA,
    cloud_account_id    UUID,
    candidates          JSONB,
    object_ids          JSONB NOT NULL,
    partner_report      TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL,
    completed_at        TIMESTAMPTZ,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id),
    CHECK (status IN ('pending', 'authorizing', 'choosing', 'completed', 'cancelled', 'failed'))
);
CREATE INDEX onboarding_sessions_user ON onboarding_sessions (org_id, user_id, created_at);
CREATE UNIQUE INDEX onboarding_sessions_state ON onboarding_sessions (oauth_state_hash)
    WHERE oauth_state_hash IS NOT NULL;

-- A driver's login at a cloud (one Smartcar user): its tokens, sealed with AES-256-GCM under the
-- key named by key_id (the nonce is stored with each ciphertext). version is bumped by every
-- token replacement, so two processes refreshing at once cannot lose a rotated refresh token.
CREATE TABLE cloud_accounts (
    id                  UUID PRIMARY KEY,
    org_id              UUID NOT NULL,
    user_id             UUID NOT NULL,
    cloud_service       UUID NOT NULL,
    external_user_id    TEXT,
    key_id              TEXT NOT NULL,
    access_token        BYTEA NOT NULL,
    refresh_token       BYTEA NOT NULL,
    access_expires_at   TIMESTAMPTZ NOT NULL,
    refresh_expires_at  TIMESTAMPTZ,
    version             BIGINT NOT NULL,
    revoked_at          TIMESTAMPTZ,
    revoked_reason      TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);
-- Linking the same cloud login again updates its row instead of adding one.
CREATE UNIQUE INDEX cloud_accounts_external ON cloud_accounts (org_id, cloud_service, external_user_id)
    WHERE external_user_id IS NOT NULL;

-- Which account an EV is reached through, and the cloud's own id for the car.
CREATE TABLE cloud_vehicle_links (
    vehicle_id          UUID PRIMARY KEY,
    org_id              UUID NOT NULL,
    account_id          UUID NOT NULL,
    cloud_service       UUID NOT NULL,
    cloud_vehicle_id    TEXT NOT NULL,
    make                TEXT,
    linked_at           TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (org_id, vehicle_id) REFERENCES electric_vehicles (org_id, id),
    FOREIGN KEY (org_id, account_id) REFERENCES cloud_accounts (org_id, id)
);
CREATE INDEX cloud_vehicle_links_account ON cloud_vehicle_links (account_id);
CREATE INDEX cloud_vehicle_links_cloud_id ON cloud_vehicle_links (cloud_service, cloud_vehicle_id);

-- Receipts of accepted commands by idempotency key, for clouds without keys of their own.
CREATE TABLE cloud_command_receipts (
    vehicle_id          UUID NOT NULL,
    idempotency_key     TEXT NOT NULL,
    receipt             JSONB NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (vehicle_id, idempotency_key)
);
CREATE INDEX cloud_command_receipts_created ON cloud_command_receipts (created_at);

-- The last state a cloud pushed through its webhooks for a car (the cloud's own document).
CREATE TABLE cloud_pushed_states (
    cloud_service       UUID NOT NULL,
    cloud_vehicle_id    TEXT NOT NULL,
    state               JSONB NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cloud_service, cloud_vehicle_id)
);

-- Webhook deliveries already applied (clouds deliver at least once).
CREATE TABLE cloud_webhook_events (
    cloud_service       UUID NOT NULL,
    event_id            TEXT NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cloud_service, event_id)
);
CREATE INDEX cloud_webhook_events_received ON cloud_webhook_events (received_at);
