//! [`WebhookStore`] in SQL both backends share, compiled once per backend like `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::Transaction;
use uuid::Uuid;
use voltplan_core::events::Event;

use super::{BACKEND, Db, ThisStore};
use crate::webhooks::{
    AttemptRecord, AttemptReport, AttemptVerdict, ClaimedDelivery, DeliveryRecord, DeliveryStatus,
    NewWebhookEndpoint, SealedSecret, WebhookEndpointRecord, WebhookEndpointUpdate, WebhookStore,
};
use crate::{Backend, OrgScope, Result, StoreError};

const ENDPOINT_COLUMNS: &str = "id, org_id, url, description, event_types, enabled, secret_key_id, \
     secret, previous_secret_key_id, previous_secret, previous_secret_until, failing_since, \
     disabled_reason, created_at, updated_at";

/// One live endpoint of an organisation (`$1`) by id (`$2`).
fn live_endpoint_select() -> String {
    format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
         WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
    )
}

/// An endpoint subscribes to the event type bound as `$n` (`event_types` is `,a,b,`).
fn subscribes(alias: &str, n: u8) -> String {
    format!("({alias}.event_types = ',*,' OR {alias}.event_types LIKE '%,' || ${n} || ',%')")
}

/// Row locks for the claim: PostgreSQL skips rows another deliverer is claiming; SQLite has one
/// writer.
const CLAIM_LOCK: &str = match BACKEND {
    Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
    Backend::Sqlite => "",
};

fn join_types(types: &[String]) -> String {
    format!(",{},", types.join(","))
}

fn split_types(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    org_id: Uuid,
    url: String,
    description: String,
    event_types: String,
    enabled: bool,
    secret_key_id: String,
    secret: Vec<u8>,
    previous_secret_key_id: Option<String>,
    previous_secret: Option<Vec<u8>>,
    previous_secret_until: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn previous(
    key_id: Option<String>,
    sealed: Option<Vec<u8>>,
    until: Option<DateTime<Utc>>,
) -> Option<(SealedSecret, DateTime<Utc>)> {
    match (key_id, sealed, until) {
        (Some(key_id), Some(sealed), Some(until)) => Some((SealedSecret { key_id, sealed }, until)),
        _ => None,
    }
}

impl From<EndpointRow> for WebhookEndpointRecord {
    fn from(row: EndpointRow) -> Self {
        WebhookEndpointRecord {
            id: row.id,
            org_id: row.org_id,
            url: row.url,
            description: row.description,
            event_types: split_types(&row.event_types),
            enabled: row.enabled,
            secret: SealedSecret {
                key_id: row.secret_key_id,
                sealed: row.secret,
            },
            previous_secret: previous(
                row.previous_secret_key_id,
                row.previous_secret,
                row.previous_secret_until,
            ),
            failing_since: row.failing_since,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.endpoint_id, d.event_id, ev.event_type, ev.payload, d.status, \
     d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.finished_at";

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Self> {
        let status = DeliveryStatus::parse(&row.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "webhook delivery {} has status {:?}",
                row.event_id, row.status
            ))
        })?;
        Ok(DeliveryRecord {
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            payload: row.payload,
            status,
            attempts: row.attempts,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(row.next_attempt_at),
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            created_at: row.created_at,
            finished_at: row.finished_at,
            attempt_log: Vec::new(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i32,
    started_at: DateTime<Utc>,
    duration_ms: i32,
    status_code: Option<i32>,
    error: Option<String>,
    response_excerpt: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    endpoint_id: Uuid,
    event_seq: i64,
    event_id: Uuid,
    org_id: Uuid,
    url: String,
    secret_key_id: String,
    secret: Vec<u8>,
    previous_secret_key_id: Option<String>,
    previous_secret: Option<Vec<u8>>,
    previous_secret_until: Option<DateTime<Utc>>,
    payload: String,
    attempts: i32,
    window_attempts: i32,
    first_attempt_at: Option<DateTime<Utc>>,
}

impl ThisStore {
    /// Writes `events` to the outbox inside the caller's transaction, each with one delivery per
    /// live, enabled endpoint of its organisation subscribed to its type; an event nobody
    /// subscribes to is not written at all.
    pub(crate) async fn append_events_in(
        tx: &mut Transaction<'static, Db>,
        events: &[Event],
    ) -> Result<()> {
        for event in events {
            let insert = format!(
                "INSERT INTO webhook_events (id, org_id, event_type, ordering_key, payload, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM webhook_endpoints e \
                   WHERE e.org_id = $2 AND e.enabled AND e.deleted_at IS NULL AND {}) \
                 RETURNING seq",
                subscribes("e", 3)
            );
            let seq: Option<(i64,)> = sqlx::query_as(&insert)
                .bind(event.id)
                .bind(event.org_id)
                .bind(event.event_type)
                .bind(&event.ordering_key)
                .bind(event.payload())
                .bind(event.occurred_at)
                .fetch_optional(&mut **tx)
                .await?;
            let Some((seq,)) = seq else { continue };
            let fan_out = format!(
                "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, org_id, ordering_key, \
                   status, attempts, next_attempt_at, created_at) \
                 SELECT e.id, $1, $2, e.org_id, $3, 'pending', 0, $4, $4 FROM webhook_endpoints e \
                 WHERE e.org_id = $5 AND e.enabled AND e.deleted_at IS NULL AND {}",
                subscribes("e", 6)
            );
            sqlx::query(&fan_out)
                .bind(seq)
                .bind(event.id)
                .bind(&event.ordering_key)
                .bind(event.occurred_at)
                .bind(event.org_id)
                .bind(event.event_type)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn endpoint_in(
        tx: &mut Transaction<'static, Db>,
        org: &OrgScope,
        id: Uuid,
    ) -> Result<WebhookEndpointRecord> {
        let row: Option<EndpointRow> = sqlx::query_as(&live_endpoint_select())
            .bind(org.id())
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// One attempt's record inside the caller's transaction; `false` when the lease was lost.
    async fn finish_attempt_in(
        tx: &mut Transaction<'static, Db>,
        claimed: &ClaimedDelivery,
        report: &AttemptReport,
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<bool> {
        let (status, next, finished) = match report.verdict {
            AttemptVerdict::Delivered => (DeliveryStatus::Delivered, now, Some(now)),
            AttemptVerdict::RetryAt(at) => (DeliveryStatus::Pending, at, None),
            AttemptVerdict::GiveUp => (DeliveryStatus::Failed, now, Some(now)),
        };
        let attempt = &report.attempt;
        let done: Option<(i32,)> = sqlx::query_as(
            "UPDATE webhook_deliveries SET status = $5, attempts = attempts + 1, \
               window_attempts = window_attempts + 1, next_attempt_at = $6, \
               first_attempt_at = COALESCE(first_attempt_at, $7), last_status_code = $8, \
               last_error = $9, finished_at = $10, lease_owner = NULL, lease_until = NULL \
             WHERE endpoint_id = $1 AND event_seq = $2 AND lease_owner = $3 AND lease_until = $4 \
               AND status = 'pending' \
             RETURNING attempts",
        )
        .bind(claimed.endpoint_id)
        .bind(claimed.event_seq)
        .bind(&claimed.lease_owner)
        .bind(claimed.lease_until)
        .bind(status.as_str())
        .bind(next)
        .bind(attempt.started_at)
        .bind(attempt.status_code)
        .bind(&attempt.error)
        .bind(finished)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((number,)) = done else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO webhook_attempts (endpoint_id, event_seq, attempt, started_at, duration_ms, \
               status_code, error, response_excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(claimed.endpoint_id)
        .bind(claimed.event_seq)
        .bind(number)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status_code)
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .execute(&mut **tx)
        .await?;
        if report.verdict == AttemptVerdict::Delivered {
            // Only a failing endpoint is written: a healthy one's row is not locked by every
            // delivery to it.
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(claimed.endpoint_id)
            .execute(&mut **tx)
            .await?;
        } else {
            let (failing_since, enabled): (Option<DateTime<Utc>>, bool) = sqlx::query_as(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) \
                 WHERE id = $1 RETURNING failing_since, enabled",
            )
            .bind(claimed.endpoint_id)
            .bind(attempt.started_at)
            .fetch_one(&mut **tx)
            .await?;
            if let Some(since) =
                failing_since.filter(|since| enabled && now - *since >= disable_after)
            {
                let reason = format!(
                    "Every delivery failed from {} to {}",
                    since.to_rfc3339(),
                    now.to_rfc3339()
                );
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, updated_at = $3 \
                     WHERE id = $1",
                )
                .bind(claimed.endpoint_id)
                .bind(&reason)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let event = Event::standalone(
                    "webhook_endpoint.disabled",
                    claimed.org_id,
                    now,
                    json!({
                        "webhook_id": claimed.endpoint_id,
                        "url": claimed.url,
                        "failing_since": since,
                        "reason": reason,
                    }),
                );
                Self::append_events_in(tx, &[event]).await?;
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl WebhookStore for ThisStore {
    async fn create_webhook_endpoint(
        &self,
        org: OrgScope,
        endpoint: &NewWebhookEndpoint,
    ) -> Result<WebhookEndpointRecord> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, org_id, url, description, event_types, enabled, \
               secret_key_id, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(endpoint.id)
        .bind(org.id())
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(join_types(&endpoint.event_types))
        .bind(endpoint.enabled)
        .bind(&endpoint.secret.key_id)
        .bind(&endpoint.secret.sealed)
        .bind(endpoint.now)
        .execute(&mut *tx)
        .await?;
        let created = Self::endpoint_in(&mut tx, &org, endpoint.id).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn webhook_endpoints(&self, org: OrgScope) -> Result<Vec<WebhookEndpointRecord>> {
        let select = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        );
        let rows: Vec<EndpointRow> = sqlx::query_as(&select)
            .bind(org.id())
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn webhook_endpoint(&self, org: OrgScope, id: Uuid) -> Result<WebhookEndpointRecord> {
        let row: Option<EndpointRow> = sqlx::query_as(&live_endpoint_select())
            .bind(org.id())
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn update_webhook_endpoint(
        &self,
        org: OrgScope,
        id: Uuid,
        update: &WebhookEndpointUpdate,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpointRecord> {
        let mut tx = self.begin_write().await?;
        // Enabling again forgets the failing streak that disabled it.
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($3, url), \
               description = COALESCE($4, description), event_types = COALESCE($5, event_types), \
               failing_since = CASE WHEN COALESCE($6, FALSE) AND NOT enabled THEN NULL \
                 ELSE failing_since END, \
               disabled_reason = CASE WHEN COALESCE($6, FALSE) THEN NULL ELSE disabled_reason END, \
               enabled = COALESCE($6, enabled), updated_at = $7 \
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.id())
        .bind(id)
        .bind(&update.url)
        .bind(&update.description)
        .bind(update.event_types.as_deref().map(join_types))
        .bind(update.enabled)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let updated = Self::endpoint_in(&mut tx, &org, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_webhook_endpoint(
        &self,
        org: OrgScope,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $3, enabled = FALSE, updated_at = $3 \
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.id())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted', \
               finished_at = $3, lease_owner = NULL, lease_until = NULL \
             WHERE org_id = $1 AND endpoint_id = $2 AND status = 'pending'",
        )
        .bind(org.id())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_webhook_secret(
        &self,
        org: OrgScope,
        id: Uuid,
        secret: &SealedSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpointRecord> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret_key_id = secret_key_id, \
               previous_secret = secret, previous_secret_until = $3, \
               secret_key_id = $4, secret = $5, updated_at = $6 \
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.id())
        .bind(id)
        .bind(previous_until)
        .bind(&secret.key_id)
        .bind(&secret.sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let rotated = Self::endpoint_in(&mut tx, &org, id).await?;
        tx.commit().await?;
        Ok(rotated)
    }

    async fn append_events(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        Self::append_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_test_event(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event: &Event,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::endpoint_in(&mut tx, &org, endpoint_id).await?;
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO webhook_events (id, org_id, event_type, ordering_key, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(event.id)
        .bind(org.id())
        .bind(event.event_type)
        .bind(&event.ordering_key)
        .bind(event.payload())
        .bind(event.occurred_at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, org_id, ordering_key, \
               status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(endpoint_id)
        .bind(seq)
        .bind(event.id)
        .bind(org.id())
        .bind(&event.ordering_key)
        .bind(event.occurred_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        self.webhook_endpoint(OrgScope::new(org.id()), endpoint_id)
            .await?;
        let select = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
             JOIN webhook_events ev ON ev.seq = d.event_seq \
             WHERE d.org_id = $1 AND d.endpoint_id = $2 AND ($3 IS NULL OR d.status = $3) \
             ORDER BY d.event_seq DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(endpoint_id)
            .bind(status.map(DeliveryStatus::as_str))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn webhook_delivery(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event_id: Uuid,
    ) -> Result<DeliveryRecord> {
        let select = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
             JOIN webhook_events ev ON ev.seq = d.event_seq \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.deleted_at IS NULL \
             WHERE d.org_id = $1 AND d.endpoint_id = $2 AND d.event_id = $3"
        );
        let row: Option<DeliveryRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(endpoint_id)
            .bind(event_id)
            .fetch_optional(&self.read)
            .await?;
        let mut delivery: DeliveryRecord = row.ok_or(StoreError::NotFound)?.try_into()?;
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT a.attempt, a.started_at, a.duration_ms, a.status_code, a.error, a.response_excerpt \
             FROM webhook_attempts a JOIN webhook_deliveries d \
               ON d.endpoint_id = a.endpoint_id AND d.event_seq = a.event_seq \
             WHERE d.org_id = $1 AND d.endpoint_id = $2 AND d.event_id = $3 ORDER BY a.attempt",
        )
        .bind(org.id())
        .bind(endpoint_id)
        .bind(event_id)
        .fetch_all(&self.read)
        .await?;
        delivery.attempt_log = attempts
            .into_iter()
            .map(|a| AttemptRecord {
                attempt: a.attempt,
                started_at: a.started_at,
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                error: a.error,
                response_excerpt: a.response_excerpt,
            })
            .collect();
        Ok(delivery)
    }

    async fn retry_webhook_delivery(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<DeliveryRecord> {
        let mut tx = self.begin_write().await?;
        Self::endpoint_in(&mut tx, &org, endpoint_id).await?;
        // A delivery being sent right now keeps its lease: the retry takes effect after it.
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, \
               first_attempt_at = NULL, window_attempts = 0, finished_at = NULL \
             WHERE org_id = $1 AND endpoint_id = $2 AND event_id = $3",
        )
        .bind(org.id())
        .bind(endpoint_id)
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        self.webhook_delivery(org, endpoint_id, event_id).await
    }

    async fn claim_webhook_deliveries(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let until = now + lease_for;
        let mut tx = self.begin_write().await?;
        let lease = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE (endpoint_id, event_seq) IN ( \
               SELECT d.endpoint_id, d.event_seq FROM webhook_deliveries d \
               JOIN webhook_endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                 AND (d.lease_until IS NULL OR d.lease_until < $3) \
                 AND e.enabled AND e.deleted_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                   WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key \
                     AND p.status = 'pending' AND p.event_seq < d.event_seq) \
               ORDER BY d.next_attempt_at, d.event_seq LIMIT $4{CLAIM_LOCK})"
        );
        sqlx::query(&lease)
            .bind(worker_id)
            .bind(until)
            .bind(now)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "SELECT d.endpoint_id, d.event_seq, d.event_id, d.org_id, e.url, e.secret_key_id, e.secret, \
               e.previous_secret_key_id, e.previous_secret, e.previous_secret_until, ev.payload, \
               d.attempts, d.window_attempts, d.first_attempt_at \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             JOIN webhook_events ev ON ev.seq = d.event_seq \
             WHERE d.lease_owner = $1 AND d.lease_until = $2 AND d.status = 'pending' \
             ORDER BY d.event_seq",
        )
        .bind(worker_id)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| ClaimedDelivery {
                endpoint_id: r.endpoint_id,
                event_seq: r.event_seq,
                event_id: r.event_id,
                org_id: r.org_id,
                url: r.url,
                secret: SealedSecret {
                    key_id: r.secret_key_id,
                    sealed: r.secret,
                },
                previous_secret: previous(
                    r.previous_secret_key_id,
                    r.previous_secret,
                    r.previous_secret_until,
                )
                .filter(|(_, until)| *until > now),
                payload: r.payload,
                attempts: r.attempts,
                window_attempts: r.window_attempts,
                first_attempt_at: r.first_attempt_at,
                lease_owner: worker_id.to_owned(),
                lease_until: until,
            })
            .collect())
    }

    async fn finish_webhook_attempts(
        &self,
        attempts: &[(ClaimedDelivery, AttemptReport)],
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let mut written = Vec::with_capacity(attempts.len());
        for (claimed, report) in attempts {
            written
                .push(Self::finish_attempt_in(&mut tx, claimed, report, now, disable_after).await?);
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn prune_webhook_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS ( \
               SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = webhook_events.seq \
                 AND d.status = 'pending')",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
