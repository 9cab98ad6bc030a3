-- Outgoing webhooks (issue 17): partners' endpoints, the transactional outbox of events, and
-- one delivery per (endpoint, event) with its attempts.
--
-- webhook_endpoints: the signing secret must be used again to sign, so it is sealed (AES-256-GCM
-- under the key named by secret_key_id, bound to the endpoint). During a rotation the previous
-- secret signs too, until previous_secret_until. event_types is ",a,b," (",*," = every type) so
-- one LIKE matches on both backends. failing_since: the first failure since the last success; a
-- day of failures disables the endpoint (enabled = false, disabled_reason).
CREATE TABLE webhook_endpoints (
    id                      UUID PRIMARY KEY,
    org_id                  UUID NOT NULL REFERENCES organisations (id),
    url                     TEXT NOT NULL,
    description             TEXT NOT NULL,
    event_types             TEXT NOT NULL,
    enabled                 BOOLEAN NOT NULL,
    secret_key_id           TEXT NOT NULL,
    secret                  BYTEA NOT NULL,
    previous_secret_key_id  TEXT,
    previous_secret         BYTEA,
    previous_secret_until   TIMESTAMPTZ,
    failing_since           TIMESTAMPTZ,
    disabled_reason         TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    deleted_at              TIMESTAMPTZ,
    UNIQUE (org_id, id)
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id) WHERE deleted_at IS NULL;

-- The outbox: written in the same transaction as the change that caused the event, and only
-- when some endpoint of the organisation subscribes to its type. seq orders a device's events.
CREATE TABLE webhook_events (
    seq                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                      UUID NOT NULL UNIQUE,
    org_id                  UUID NOT NULL REFERENCES organisations (id),
    event_type              TEXT NOT NULL,
    ordering_key            TEXT NOT NULL,
    payload                 TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- One row per endpoint and event. status: pending → delivered, or failed (given up after the
-- retry window, or the endpoint was deleted). A worker leases due rows (lease_owner,
-- lease_until) so two workers never send the same delivery at once; a delivery waits while an
-- earlier one of the same endpoint and ordering key (device) is pending.
CREATE TABLE webhook_deliveries (
    endpoint_id             UUID NOT NULL,
    event_seq               BIGINT NOT NULL REFERENCES webhook_events (seq) ON DELETE CASCADE,
    event_id                UUID NOT NULL,
    org_id                  UUID NOT NULL,
    ordering_key            TEXT NOT NULL,
    status                  TEXT NOT NULL,
    attempts                INTEGER NOT NULL,
    -- Attempts since the retry window began (a retry or replay starts a new window).
    window_attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TIMESTAMPTZ NOT NULL,
    first_attempt_at        TIMESTAMPTZ,
    lease_owner             TEXT,
    lease_until             TIMESTAMPTZ,
    last_status_code        INTEGER,
    last_error              TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    finished_at             TIMESTAMPTZ,
    PRIMARY KEY (endpoint_id, event_seq),
    UNIQUE (endpoint_id, event_id),
    FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id),
    CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, event_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at);

-- Every attempt, for the delivery log (the response body truncated to 1 KiB).
CREATE TABLE webhook_attempts (
    endpoint_id             UUID NOT NULL,
    event_seq               BIGINT NOT NULL,
    attempt                 INTEGER NOT NULL,
    started_at              TIMESTAMPTZ NOT NULL,
    duration_ms             INTEGER NOT NULL,
    status_code             INTEGER,
    error                   TEXT,
    response_excerpt        TEXT,
    PRIMARY KEY (endpoint_id, event_seq, attempt),
    FOREIGN KEY (endpoint_id, event_seq) REFERENCES webhook_deliveries (endpoint_id, event_seq) ON DELETE CASCADE
);
